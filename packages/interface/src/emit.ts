/**
 * How a holdfast service reports a fact: to its own listeners (`service.addEventListener`) and
 * to everyone through the cleanup broadcaster when the node has one.
 */

import type { CleanupBroadcaster } from './broadcaster.ts'
import type { HoldfastEvents, HoldfastEventType } from './events.ts'
import type { Logger } from '@libp2p/interface'

/**
 * Dispatches `type` to `target`'s listeners (only when there are some, so a burst of facts
 * nobody listens to builds no events) and publishes it through `broadcaster`. Neither can
 * throw into the service: a listener's throw is the platform's to report, and a publish that
 * fails is logged.
 */
/** what `emit` needs of a service: main-event's `TypedEventEmitter` has both */
export interface EventSource {
  listenerCount(type: string): number
  safeDispatchEvent(type: string, init: CustomEventInit): boolean
}

export function emit<K extends HoldfastEventType> (target: EventSource, broadcaster: CleanupBroadcaster | undefined, log: Logger, type: K, detail: HoldfastEvents[K]): void {
  if (target.listenerCount(type) > 0) {
    target.safeDispatchEvent(type, { detail })
  }
  try {
    broadcaster?.publish(type, detail)
  } catch (err) {
    log.error('publishing %s failed - %e', type, err)
  }
}
