/**
 * A page of code bundled for the browser, served from 127.0.0.1 and run in Debian's Chromium,
 * driven by playwright-core. Never a downloaded browser: the tests drive the Chromium users
 * have, at `CHROMIUM_PATH` or Debian's `/usr/lib/chromium/chromium` (`npm run chromium`
 * installs it where it may). Node only, so the browser bundles of the other helpers stay clean.
 *
 * The entry is bundled with esbuild for the browser, so a package's `browser` field applies
 * and the bundle shows what a bundler would ship.
 */

import { existsSync } from 'node:fs'
import http from 'node:http'
import { build } from 'esbuild'
import { chromium } from 'playwright-core'
import type { Metafile } from 'esbuild'
import type { Browser } from 'playwright-core'

/** Where Debian's `chromium` package puts the browser */
export const DEBIAN_CHROMIUM = '/usr/lib/chromium/chromium'

/** Headless, and quiet: no first-run UI, no background traffic, no QUIC to 127.0.0.1 */
export const CHROMIUM_ARGS: readonly string[] = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

export interface BrowserHarnessInit {
  /** the page's module, as JavaScript source (it may import TypeScript files), bundled by esbuild for the browser */
  entry: string
  /** the directory the entry's imports resolve from */
  resolveDir: string
  /**
   * esbuild's working directory: the metafile's input paths are relative to it
   *
   * @default resolveDir
   */
  workingDir?: string
  /**
   * Keep Chromium's back/forward cache on (playwright turns it off), for tests that leave a
   * page and come back to it
   *
   * @default false
   */
  backForwardCache?: boolean
}

export interface BrowserHarness {
  /** the bundled entry, to check what went in */
  readonly bundle: string
  /** esbuild's account of the bundle's inputs */
  readonly metafile: Metafile
  /** `http://127.0.0.1:<port>`: `/` is a page that loads the bundle, any other path a page without it */
  readonly url: string
  readonly browser: Browser
  /** closes the browser and the server */
  close(): Promise<void>
}

/** The Chromium binary the tests run, or an error saying how to get one (a browser test does not skip) */
export function chromiumPath (): string {
  const path = process.env.CHROMIUM_PATH ?? DEBIAN_CHROMIUM
  if (!existsSync(path)) {
    throw new Error(`No Chromium at ${path}: install Debian's chromium package (npm run chromium, or apt-get install chromium) or set CHROMIUM_PATH. CI installs it; browser tests do not skip.`)
  }
  return path
}

/** Bundles the entry, serves it from 127.0.0.1 and launches Chromium; open pages on `browser` at `url` */
export async function startBrowserHarness (init: BrowserHarnessInit): Promise<BrowserHarness> {
  const executablePath = chromiumPath()
  const result = await build({
    stdin: { contents: init.entry, resolveDir: init.resolveDir, loader: 'js', sourcefile: 'page.js' },
    absWorkingDir: init.workingDir ?? init.resolveDir,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent'
  })
  const bundle = result.outputFiles[0].text
  const server = http.createServer((req, res) => {
    if (req.url === '/bundle.js') {
      res.setHeader('content-type', 'text/javascript')
      res.end(bundle)
      return
    }
    res.setHeader('content-type', 'text/html')
    res.end(req.url === '/' ? '<!doctype html><html><body><script type="module" src="/bundle.js"></script></body></html>' : '<!doctype html><html><body></body></html>')
  })
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  const closeServer = async (): Promise<void> => new Promise(resolve => { server.close(() => { resolve() }) })
  let browser: Browser
  try {
    browser = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS], ...(init.backForwardCache === true ? { ignoreDefaultArgs: ['--disable-back-forward-cache'] } : {}) })
  } catch (err) {
    await closeServer()
    throw err
  }
  return {
    bundle,
    metafile: result.metafile,
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    browser,
    async close () {
      await browser.close()
      server.closeAllConnections()
      await closeServer()
    }
  }
}
