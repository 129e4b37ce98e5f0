/**
 * The browser adapter in a real Chromium (Debian's `chromium` package, driven by
 * playwright-core, through test-utils' browser harness). A Node test: the harness bundles the
 * package for the browser with esbuild (which also proves the bundle has no Node import:
 * package.json's `browser` field swaps the Node adapter out) and serves it from 127.0.0.1;
 * the test drives the page: offline and back online with `context.setOffline`, and to the
 * background and back by navigating away and returning through the back/forward cache
 * (headless Chromium keeps a lone page visible otherwise).
 */

import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startBrowserHarness } from '@holdfast/test-utils/browser'
import { expect } from 'aegir/chai'
import type { NetworkEvent, NetworkSnapshot, RecoveryAction } from '@holdfast/interface'
import type { BrowserHarness } from '@holdfast/test-utils/browser'
import type { BrowserContext, Page } from 'playwright-core'

/** the page imports the package by its name, from the package's own folder */
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** What the page records (window.__seen) */
interface Seen {
  baselines: NetworkSnapshot[]
  adapter: NetworkEvent[]
  batches: RecoveryAction[]
  calls: string[]
  /** snapshot() of a second supervisor left on its default adapters */
  defaultAdapterSnapshot?: NetworkSnapshot
  ready: boolean
}

/** The page: a supervisor on the browser adapter, with a processor that records the actions */
const PAGE_ENTRY = `
import { browserAdapter, networkSupervisor } from '@holdfast/network-supervisor'
import { defaultLogger } from '@libp2p/logger'

const seen = { baselines: [], adapter: [], batches: [], calls: [], ready: false }
window.__seen = seen
const inner = browserAdapter()
// records what the adapter hands over, then passes it on untouched
const recording = {
  name: 'recorded-browser',
  start (sink, context) {
    inner.start({
      event: (e) => { seen.adapter.push(e); sink.event(e) },
      baseline: (s) => { seen.baselines.push(s); sink.baseline(s) }
    }, context)
  },
  stop () { inner.stop() },
  internalSizes () { return inner.internalSizes() }
}
const record = (name) => async () => { seen.calls.push(name) }
const processor = { offline: record('offline'), probe: record('probe'), restore: record('restore'), cleanupOnly: record('cleanupOnly'), forceReconnect: record('forceReconnect') }
const components = { logger: defaultLogger() }
const supervisor = networkSupervisor({ settleWindow: 50, debounceWindow: 0, processor, adapters: [recording] })(components)
supervisor.addEventListener('network:batch', ({ detail }) => { seen.batches.push(detail.action) })
supervisor.start()
const auto = networkSupervisor({ processor })(components)
auto.start()
seen.defaultAdapterSnapshot = auto.snapshot()
seen.ready = true
`

describe('browser adapter in a real Chromium (playwright-core, Debian chromium)', function () {
  let harness: BrowserHarness | undefined
  let base: string
  let bundle: string
  let context: BrowserContext
  let page: Page

  before(async function () {
    // the background test leaves the page and comes back through the back/forward cache
    harness = await startBrowserHarness({ entry: PAGE_ENTRY, resolveDir: PACKAGE_ROOT, backForwardCache: true })
    base = harness.url
    bundle = harness.bundle
  })

  after(async () => {
    await harness?.close()
  })

  beforeEach(async () => {
    if (harness == null) {
      throw new Error('Chromium did not start')
    }
    context = await harness.browser.newContext()
    page = await context.newPage()
    await page.goto(`${base}/`)
    await page.waitForFunction(() => (window as unknown as { __seen?: Seen }).__seen?.ready === true)
  })

  afterEach(async () => {
    await context?.close()
  })

  const seen = async (): Promise<Seen> => page.evaluate(() => (window as unknown as { __seen: Seen }).__seen)

  it('the bundle has no Node code and the default adapter in a browser is the browser adapter', async () => {
    expect(bundle).to.not.include('networkInterfaces')
    expect(bundle).to.not.match(/from\s*["']node:/)
    const { defaultAdapterSnapshot, baselines } = await seen()
    expect(defaultAdapterSnapshot).to.deep.include({ sequence: 1, availability: 'available', isConstrained: false })
    expect(baselines).to.have.length(1)
    expect(baselines[0]).to.deep.include({ availability: 'available' })
  })

  it('offline then online -> snapshots unavailable then available -> actions offline then restore', async () => {
    await context.setOffline(true)
    await page.waitForFunction(() => (window as unknown as { __seen: Seen }).__seen.calls.length === 1)
    await context.setOffline(false)
    await page.waitForFunction(() => (window as unknown as { __seen: Seen }).__seen.calls.length === 2)

    const { adapter, batches, calls, baselines } = await seen()
    const snapshots = adapter.filter(e => e.type === 'network-path-changed').map(e => e.type === 'network-path-changed' ? e.snapshot : undefined)
    expect(snapshots.map(s => [s?.sequence, s?.availability])).to.deep.equal([[2, 'unavailable'], [3, 'available']])
    expect(snapshots[0]?.transport).to.deep.equal({ wifi: false, cellular: false, ethernet: false, vpn: false, other: false })
    expect(baselines[0].sequence).to.equal(1)
    expect(batches).to.deep.equal(['offline', 'restore'])
    expect(calls).to.deep.equal(['offline', 'restore'])
  })

  it('to the background and back (pagehide / visibilitychange / pageshow) -> one background, one foreground with the measured duration', async () => {
    const leftAt = Date.now()
    await page.goto(`${base}/elsewhere`)
    const awayFrom = Date.now()
    // work done while the page is away; its length is whatever it is, the bounds below hold
    await page.waitForFunction(() => document.readyState === 'complete')
    const awayTo = Date.now()
    await page.goBack({ waitUntil: 'commit' }) // restored from the back/forward cache: no load event
    await page.waitForFunction(() => (window as unknown as { __seen?: Seen }).__seen?.adapter.some(e => e.type === 'app-lifecycle-changed' && e.state.state === 'foreground'))
    const backAt = Date.now()

    const { adapter } = await seen()
    const lifecycle = adapter.filter(e => e.type === 'app-lifecycle-changed').map(e => e.type === 'app-lifecycle-changed' ? e.state : undefined)
    expect(lifecycle.map(s => s?.state)).to.deep.equal(['background', 'foreground'])
    const measured = lifecycle[1]?.state === 'foreground' ? lifecycle[1].backgroundDurationMs : -1
    // the page was hidden at least while the other page was shown, and at most from the
    // navigation away to the foreground event being seen
    expect(measured).to.be.at.least(awayTo - awayFrom)
    expect(measured).to.be.at.most(backAt - leftAt)
    // a short background: the foreground's batch probes
    await page.waitForFunction(() => (window as unknown as { __seen: Seen }).__seen.batches.includes('probe'))
    expect((await seen()).calls).to.deep.equal(['probe'])
  })
})
