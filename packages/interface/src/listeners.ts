/**
 * The listeners a service adds to the node's events on start and takes off on stop, counted
 * for `internalSizes().listeners`.
 */

import type { Logger } from '@libp2p/interface'

/** what is listened to: libp2p's `components.events`, or any `EventTarget` */
export interface ListenerTarget {
  addEventListener(type: string, listener: (event: any) => void): void
  removeEventListener(type: string, listener: (event: any) => void): void
}

/** handlers by event type, each given the event `Events` declares for it (an event map, as `Libp2pEvents` is) */
export type Handlers<Events> = {
  [K in keyof Events & string]?: (event: Events[K]) => void
}

/**
 * A handler that throws is logged, not rethrown: a throw inside libp2p's event target would
 * become an uncaught exception of the whole process.
 */
export class EventListeners<Events = Record<string, unknown>> {
  private readonly target: ListenerTarget
  private readonly handlers: Array<[string, (event: any) => void]>
  private listening = false

  constructor (target: ListenerTarget, handlers: Handlers<Events>, log?: Logger) {
    this.target = target
    this.handlers = Object.entries(handlers)
      .filter((entry): entry is [string, (event: any) => void] => typeof entry[1] === 'function')
      .map(([type, handler]) => [type, (event: unknown) => {
        try {
          handler(event)
        } catch (err) {
          log?.error('handling %s failed - %e', type, err)
        }
      }])
  }

  /** listeners added now */
  get size (): number {
    return this.listening ? this.handlers.length : 0
  }

  /** adds every handler (again after `remove()`; twice in a row adds nothing) */
  add (): void {
    if (this.listening) {
      return
    }
    this.listening = true
    for (const [type, handler] of this.handlers) {
      this.target.addEventListener(type, handler)
    }
  }

  remove (): void {
    if (!this.listening) {
      return
    }
    this.listening = false
    for (const [type, handler] of this.handlers) {
      this.target.removeEventListener(type, handler)
    }
  }
}
