/**
 * @packageDocumentation
 *
 * One typed connection-event stream for every layer, a top-down cleanup chain per peer that
 * runs the moment the peer is gone, and work bound to a peer (or one connection) that fails
 * at once instead of waiting for its timeout. A libp2p service with the capability
 * `@holdfast/cleanup-broadcaster`.
 *
 * @example
 *
 * ```TypeScript
 * import { createLibp2p } from 'libp2p'
 * import { cleanupBroadcaster, defaultChain } from '@holdfast/cleanup-broadcaster'
 *
 * const node = await createLibp2p({
 *   // ...transports, encrypters, muxers
 *   services: {
 *     broadcaster: cleanupBroadcaster({ middleware: defaultChain() })
 *   }
 * })
 *
 * const { broadcaster } = node.services
 *
 * // every layer sees every event
 * broadcaster.subscribe('peer:gone', ({ detail }) => console.info('gone', detail.peer.toString()))
 *
 * // a request bound to the peer rejects with ConnectionClosedError the moment the peer goes
 * const reply = await broadcaster.track(peerId, async (signal) => askPeer(peerId, { signal }), { timeout: 30_000 })
 *
 * // top-down cleanup: the app layer first, the transport last
 * broadcaster.onCleanup('request-cache', 10, (peer) => { cache.delete(peer.toString()) })
 * ```
 */

import { CleanupBroadcaster as CleanupBroadcasterClass } from './broadcaster.ts'
import { CLOSING_WINDOW_MS, READY_CONDITIONS, REPLACE_CONNECTIONS } from './constants.ts'
import type { CleanupBroadcaster, Clock, Middleware } from '@holdfast/interface'
import type { ComponentLogger, Libp2pEvents, Metrics, PeerId, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

export { recovery, logging, metrics, timeout, validation, rateLimit, dedup, defaultDedupKey, defaultChain, productionChain, coreSchemas } from './middleware.ts'
export type { HandlerTimes, MetricsMiddleware, RateLimitOptions, Schemas, Validator } from './middleware.ts'
export { replacementVictim, isReady, cleanupTrigger } from './policy.ts'
export type { ConnectionFacts } from './policy.ts'
export type { CleanupBroadcaster, Middleware, Delivery, MiddlewareContext, BroadcasterStats, CleanupLayer, TrackOptions, WhenReadyOptions, SubscribeOptions, EventHandler, AnyEventHandler, InternalSizes } from '@holdfast/interface'

export interface CleanupBroadcasterInit {
  /**
   * Run before delivery, in order. `recovery()` is added in front when missing.
   *
   * @default [recovery()]
   */
  middleware?: Middleware[]

  /**
   * After a peer's cleanup, new work for it fails fast with `PeerClosingError` for this long
   * (ms), even if the peer connects again meanwhile.
   *
   * @default 0
   */
  closingWindowMs?: number

  /**
   * Conditions a peer needs before `whenReady` resolves and `peer:ready` is published.
   *
   * @default ['connected']
   */
  readyConditions?: string[]

  /**
   * Close an older connection of the same path kind when a newer one opens
   * (`connection:replaced`), using a rule both ends agree on.
   *
   * @default true
   */
  replaceConnections?: boolean

  /** @default the system clock */
  clock?: Clock
}

export interface CleanupBroadcasterComponents {
  peerId: PeerId
  events: TypedEventTarget<Libp2pEvents>
  connectionManager: ConnectionManager
  logger: ComponentLogger
  metrics?: Metrics
}

/** The defaults, in one place */
export const defaults = {
  closingWindowMs: CLOSING_WINDOW_MS,
  readyConditions: READY_CONDITIONS,
  replaceConnections: REPLACE_CONNECTIONS
} as const

export function cleanupBroadcaster (init: CleanupBroadcasterInit = {}): (components: CleanupBroadcasterComponents) => CleanupBroadcaster {
  return (components) => new CleanupBroadcasterClass(components, init)
}
