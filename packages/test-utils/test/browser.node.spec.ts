import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'aegir/chai'
import { chromiumPath, startBrowserHarness } from '../src/browser.ts'
import { seededRandom } from '../src/random.ts'
import type { BrowserHarness } from '../src/browser.ts'

const TEST_DIR = path.dirname(fileURLToPath(import.meta.url))

/** a page module importing a TypeScript file, which the bundler resolves from `resolveDir` */
const ENTRY = `
import { seededRandom } from '../src/random.ts'
window.pageResult = { random: seededRandom(1)(), online: navigator.onLine }
`

describe('startBrowserHarness (Debian\'s Chromium through playwright-core)', function () {
  let harness: BrowserHarness | undefined

  afterEach(async () => {
    await harness?.close()
    harness = undefined
  })

  it('bundles the entry for the browser, serves it on 127.0.0.1 and runs it in Chromium', async () => {
    harness = await startBrowserHarness({ entry: ENTRY, resolveDir: TEST_DIR })
    expect(harness.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(harness.bundle).to.include('pageResult')
    expect(Object.keys(harness.metafile.inputs).some(input => input.includes('random'))).to.equal(true)

    const page = await harness.browser.newPage()
    await page.goto(`${harness.url}/`)
    await page.waitForFunction(() => (window as unknown as { pageResult?: unknown }).pageResult != null)
    const result = await page.evaluate(() => (window as unknown as { pageResult: { random: number, online: boolean } }).pageResult)
    // the same seeded source in Node gives the same number: the page ran the bundled helper
    expect(result).to.deep.equal({ random: seededRandom(1)(), online: true })

    // any other path is a page without the bundle, to navigate away to
    await page.goto(`${harness.url}/elsewhere`)
    expect(await page.evaluate(() => document.scripts.length)).to.equal(0)
  })

  it('close() stops the browser and the server', async () => {
    const started = await startBrowserHarness({ entry: 'window.ready = true', resolveDir: TEST_DIR })
    await started.close()
    expect(started.browser.isConnected()).to.equal(false)
    const refused = await fetch(`${started.url}/`).then(() => 'served', (err: Error) => err.name)
    expect(refused).to.equal('TypeError')
  })

  it('says how to get Chromium when there is none, instead of skipping or downloading one', () => {
    const before = process.env.CHROMIUM_PATH
    process.env.CHROMIUM_PATH = path.join(TEST_DIR, 'no-chromium-here')
    try {
      expect(() => chromiumPath()).to.throw(/No Chromium at .*no-chromium-here.*apt-get install chromium/)
    } finally {
      if (before === undefined) {
        delete process.env.CHROMIUM_PATH
      } else {
        process.env.CHROMIUM_PATH = before
      }
    }
  })
})
