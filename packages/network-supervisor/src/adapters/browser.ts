/**
 * The browser adapter: `online` / `offline`, the Network Information API's `change`, and page
 * visibility (`visibilitychange`, `pagehide`, `pageshow`) with the time spent in the
 * background measured on the supervisor's clock. Bundle-safe: no Node imports.
 */

import { contentFromBrowser, sameContent } from '../policy.ts'
import type { AdapterContext, AdapterSink, NetworkAdapter } from '../index.ts'
import type { SnapshotContent } from '../policy.ts'

interface EventSource {
  addEventListener(type: string, listener: (event: Event) => void): void
  removeEventListener(type: string, listener: (event: Event) => void): void
}

/** `navigator.connection` (Chromium, Android WebView); absent in Firefox and Safari */
interface NetworkInformationLike extends EventSource {
  type?: string
  saveData?: boolean
}

/** The globals the adapter reads; `globalThis` in a page, injectable for tests */
export interface BrowserGlobals extends EventSource {
  navigator: { onLine: boolean, connection?: NetworkInformationLike }
  document: EventSource & { visibilityState: string }
}

export interface BrowserAdapterInit {
  /** @default globalThis */
  globals?: BrowserGlobals
}

class BrowserAdapter implements NetworkAdapter {
  readonly name = 'browser'
  private readonly init: BrowserAdapterInit
  private readonly listeners: Array<{ target: EventSource, type: string, fn(event: Event): void }> = []
  private sink?: AdapterSink
  private context?: AdapterContext
  private globals?: BrowserGlobals
  private last?: SnapshotContent
  private sequence = 0
  /** clock time the page went to the background; undefined while in the foreground */
  private hiddenAt?: number

  constructor (init: BrowserAdapterInit) {
    this.init = init
  }

  start (sink: AdapterSink, context: AdapterContext): void {
    const globals = this.init.globals ?? (globalThis as unknown as BrowserGlobals)
    if (globals?.navigator == null || globals.document == null) {
      context.log('no browser globals: the browser adapter does nothing')
      return
    }
    this.sink = sink
    this.context = context
    this.globals = globals
    this.listen(globals, 'online', this.onNetwork)
    this.listen(globals, 'offline', this.onNetwork)
    if (globals.navigator.connection != null) {
      this.listen(globals.navigator.connection, 'change', this.onNetwork)
    }
    this.listen(globals.document, 'visibilitychange', this.onVisibility)
    this.listen(globals, 'pagehide', this.onHidden)
    this.listen(globals, 'pageshow', this.onShown)
    this.hiddenAt = globals.document.visibilityState === 'hidden' ? context.clock.now() : undefined
    this.last = this.read()
    sink.baseline({ sequence: ++this.sequence, ...this.last })
  }

  stop (): void {
    for (const { target, type, fn } of this.listeners) {
      target.removeEventListener(type, fn)
    }
    this.listeners.length = 0
    this.sink = undefined
    this.globals = undefined
  }

  internalSizes (): { timers: number, listeners: number } {
    return { timers: 0, listeners: this.listeners.length }
  }

  private listen (target: EventSource, type: string, fn: (event: Event) => void): void {
    target.addEventListener(type, fn)
    this.listeners.push({ target, type, fn })
  }

  private read (): SnapshotContent {
    const navigator = this.globals?.navigator
    const connection = navigator?.connection
    return contentFromBrowser({ onLine: navigator?.onLine ?? true, type: connection?.type, saveData: connection?.saveData })
  }

  /** a new snapshot only when what the browser reports changed */
  private readonly onNetwork = (): void => {
    const content = this.read()
    if (this.last !== undefined && sameContent(content, this.last)) {
      return
    }
    this.last = content
    this.sink?.event({ type: 'network-path-changed', snapshot: { sequence: ++this.sequence, ...content } })
  }

  private readonly onVisibility = (): void => {
    if (this.globals?.document.visibilityState === 'hidden') {
      this.onHidden()
    } else {
      this.onShown()
    }
  }

  /** `visibilitychange` to hidden and `pagehide` both come on the way out: one background event */
  private readonly onHidden = (): void => {
    if (this.hiddenAt !== undefined || this.context == null) {
      return
    }
    this.hiddenAt = this.context.clock.now()
    this.sink?.event({ type: 'app-lifecycle-changed', state: { state: 'background' } })
  }

  /** `visibilitychange` to visible and `pageshow` (back from the bfcache): one foreground event */
  private readonly onShown = (): void => {
    if (this.hiddenAt === undefined || this.context == null || this.globals?.document.visibilityState === 'hidden') {
      return
    }
    const backgroundDurationMs = Math.max(0, this.context.clock.now() - this.hiddenAt)
    this.hiddenAt = undefined
    this.sink?.event({ type: 'app-lifecycle-changed', state: { state: 'foreground', backgroundDurationMs } })
  }
}

export function browserAdapter (init: BrowserAdapterInit = {}): NetworkAdapter {
  return new BrowserAdapter(init)
}
