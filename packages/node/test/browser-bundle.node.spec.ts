/**
 * The browser build of `@holdfast/node` in a real Chromium (Debian's `chromium` package, driven by
 * playwright-core through test-utils' browser harness; never a downloaded browser). A Node test:
 * the harness bundles an entry importing `createHoldfastNode` from '@holdfast/node' with esbuild
 * for the browser (package.json's `browser` field swaps transports.js for transports.browser.js,
 * so no TCP) and serves it from 127.0.0.1; in the same process run a realm relay (WebSockets
 * only) and a Node member. The page's node knows only the PSK and the relay's address.
 */

import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { expectNoLeaks, onceEvent, stopAll } from '@holdfast/test-utils'
import { startBrowserHarness } from '@holdfast/test-utils/browser'
import { byteStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { createHoldfastNode } from '../src/index.ts'
import { connectionGater } from '../src/transports.browser.ts'
import { ECHO } from './fixtures/browser-member.ts'
import type { HoldfastRealmNode } from '../src/index.ts'
import type { BrowserReport } from './fixtures/browser-member.ts'
import type { BrowserHarness } from '@holdfast/test-utils/browser'
import type { PeerId } from '@libp2p/interface'
import type { Metafile } from 'esbuild'
import type { Page } from 'playwright-core'

/** aegir runs the specs from test/ as TypeScript */
const TEST_DIR = path.dirname(fileURLToPath(import.meta.url))
const PACKAGE_ROOT = path.resolve(TEST_DIR, '..')
const PSK = new Uint8Array(32).fill(7)

/** Through the package's own name, so the bundler reads its package.json (`browser` field) */
const PAGE_ENTRY = `
import { createHoldfastNode } from '@holdfast/node'
import { install } from './fixtures/browser-member.ts'
install(createHoldfastNode)
`

/** resolves once `node`'s realm lists the peer with that ID as a member */
async function member (node: HoldfastRealmNode, peerId: string): Promise<PeerId> {
  const known = node.services.realm.members().find(m => m.peerId.toString() === peerId)
  if (known != null) {
    return known.peerId
  }
  const { peer } = await onceEvent(node.services.realm, 'member:joined', d => d.peer.toString() === peerId)
  return peer
}

/** resolves once `node`'s path selector carries `peer`'s traffic on a direct path */
async function directPrimary (node: HoldfastRealmNode, peer: PeerId): Promise<void> {
  if (node.services.paths.mode(peer) !== 'direct-primary') {
    await onceEvent(node.services.paths, 'path:changed', d => d.peer.equals(peer) && d.to === 'direct-primary')
  }
}

async function echo (node: HoldfastRealmNode, peer: PeerId, text: string): Promise<string> {
  const stream = byteStream(await node.services.paths.openStream(peer, ECHO))
  const sent = new TextEncoder().encode(text)
  await stream.write(sent)
  const echoed = await stream.read({ bytes: sent.length })
  await stream.unwrap().close()
  return new TextDecoder().decode(echoed.subarray())
}

describe('the browser bundle in a real Chromium (esbuild, playwright-core, Debian chromium), joining a realm through a Node relay over WebSockets', function () {
  let harness: BrowserHarness | undefined
  let bundle: string
  let metafile: Metafile
  let page: Page
  let nodes: HoldfastRealmNode[] = []
  /** what the page reported (window.holdfastReport), and the waiters on it */
  const reports: BrowserReport[] = []
  let waiters: Array<() => void> = []

  const reported = async (wanted: (r: BrowserReport) => boolean): Promise<void> => new Promise<void>(resolve => {
    const check = (): void => {
      if (reports.some(wanted)) {
        resolve()
      } else {
        waiters.push(check)
      }
    }
    check()
  })

  before(async function () {
    harness = await startBrowserHarness({ entry: PAGE_ENTRY, resolveDir: TEST_DIR, workingDir: PACKAGE_ROOT })
    bundle = harness.bundle
    metafile = harness.metafile
    page = await harness.browser.newPage()
    await page.exposeFunction('holdfastReport', (report: BrowserReport) => {
      reports.push(report)
      const woken = waiters
      waiters = []
      woken.forEach(wake => { wake() })
    })
    await page.goto(`${harness.url}/`)
    await page.waitForFunction(() => window.browserMember != null)
  })

  after(async () => {
    await stopAll(nodes)
    nodes = []
    await harness?.close()
  })

  it('bundles for the browser: transports.browser.js in, @libp2p/tcp and node: builtins out', () => {
    const inputs = Object.keys(metafile.inputs)
    expect(inputs).to.include('dist/src/transports.browser.js')
    expect(inputs).to.not.include('dist/src/transports.js')
    expect(inputs.filter(input => input.includes('@libp2p/tcp') || input.startsWith('node:'))).to.deep.equal([])
    expect(bundle).to.not.match(/from\s*["']node:/)
  })

  it('a browser member and a Node member that know only the relay\'s address see each other, connect by peer ID through the relay and move to WebRTC', async () => {
    const relay = await createHoldfastNode({ realm: { psk: PSK }, relayServer: true, preset: 'test', listen: ['/ip4/127.0.0.1/tcp/0/ws'] })
    nodes.push(relay)
    const relayAddr = relay.getMultiaddrs()[0]
    // TCP and WebRTC only: nothing the browser can dial, so every path between them starts at the relay
    const nodeMember = await createHoldfastNode({ realm: { psk: PSK }, relays: [relayAddr], preset: 'test', listen: ['/ip4/127.0.0.1/tcp/0', '/webrtc'] })
    nodes.push(nodeMember)
    await nodeMember.handle(ECHO, async (stream) => {
      for await (const chunk of stream) {
        stream.send(chunk)
      }
      await stream.close()
    })
    const nodeId = nodeMember.peerId.toString()

    const browserId = await page.evaluate(async ([relay, psk]) => window.browserMember?.start(relay, psk), [relayAddr.toString(), [...PSK]] as [string, number[]])
    expect(browserId).to.be.a('string')
    const [browserPeer] = await Promise.all([
      member(nodeMember, String(browserId)),
      reported(r => r.type === 'member:joined' && r.peer === nodeId)
    ])
    expect(nodeMember.services.realm.members().map(m => m.peerId.toString())).to.include(browserId)
    expect(await page.evaluate(() => window.browserMember?.members())).to.include(nodeId)

    // Node -> browser by peer ID: the browser listens nowhere, so through the relay first
    const connection = await nodeMember.services.realm.connect(browserPeer)
    expect(connection.remotePeer.equals(browserPeer)).to.be.true()
    const relayed = nodeMember.services.paths.paths(browserPeer).find(p => p.kind === 'relayed')
    expect(relayed?.transport).to.equal('p2p-circuit')
    expect(relayed?.remoteAddr.toString().startsWith(`${relayAddr.toString()}/p2p-circuit`)).to.be.true()

    // then WebRTC, Chromium <-> Node on this machine, with the relayed path kept as backup. It
    // needs an interface besides loopback: in a network namespace with only `lo` no ICE pair
    // forms (path-selector's Node-only upgrade test fails there the same way)
    await directPrimary(nodeMember, browserPeer)
    expect(nodeMember.services.paths.best(browserPeer)).to.deep.include({ kind: 'direct', transport: 'webrtc', holePunched: true })
    expect(nodeMember.services.paths.paths(browserPeer).map(p => p.kind)).to.include('relayed')
    expect(await echo(nodeMember, browserPeer, 'hello browser, by peer ID')).to.equal('hello browser, by peer ID')
    await reported(r => r.type === 'echoed' && r.bytes === 'hello browser, by peer ID'.length)

    // browser -> Node by peer ID
    expect(await page.evaluate(async (peer) => window.browserMember?.echo(peer, 'hello Node, by peer ID'), nodeId)).to.equal('hello Node, by peer ID')
    expect(await page.evaluate((peer) => window.browserMember?.mode(peer), nodeId)).to.equal('direct-primary')

    const sizes = await page.evaluate(async () => window.browserMember?.stop())
    expect(sizes).to.have.keys('broadcaster', 'connections', 'paths', 'reconnector', 'network', 'realm')
    for (const [name, internalSizes] of Object.entries(sizes ?? {})) {
      expect(() => { expectNoLeaks({ internalSizes: () => internalSizes }) }, name).to.not.throw()
    }
  })
})

describe('the browser connection gater (transports.browser.ts)', () => {
  const denied = async (ma: string): Promise<boolean | undefined> => connectionGater().denyDialMultiaddr?.(multiaddr(ma))
  const PEER = '12D3KooWSz4fDttsbgSFgR2raxamQMXNYywoHTPUXqaW9LTFfzAi'

  it('lets loopback through, plain ws:// and circuits over it included', async () => {
    expect(await denied(`/ip4/127.0.0.1/tcp/4002/ws/p2p/${PEER}`)).to.be.false()
    expect(await denied(`/ip4/127.0.0.1/tcp/4002/ws/p2p/${PEER}/p2p-circuit/p2p/${PEER}`)).to.be.false()
    expect(await denied('/ip6/::1/tcp/4002/ws')).to.be.false()
  })

  it('keeps libp2p\'s browser default elsewhere: no LAN address, no plain ws:// on the internet; wss:// is fine', async () => {
    expect(await denied('/ip4/192.168.1.5/tcp/4002/wss')).to.be.true()
    expect(await denied('/ip4/1.1.1.1/tcp/4002/ws')).to.be.true()
    expect(await denied('/dns4/relay.example.com/tcp/443/wss')).to.be.false()
    expect(await denied('/ip4/1.1.1.1/udp/4001/webrtc-direct')).to.be.false()
  })
})
