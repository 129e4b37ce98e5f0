/**
 * @packageDocumentation
 *
 * When a connection dies, every layer of an app usually finds out on its own and late: a
 * pending request waits for its 30 s timeout, a cache keeps a dead handle, a dial in progress
 * cannot be cancelled. This service gives a libp2p node one event stream that every layer
 * subscribes to, binds pending work to a peer (or to one connection) so it fails the moment the
 * peer goes, and runs an ordered cleanup chain per peer, app layer first, transport last.
 *
 * @example
 *
 * ```TypeScript
 * import { noise } from '@chainsafe/libp2p-noise'
 * import { yamux } from '@chainsafe/libp2p-yamux'
 * import { cleanupBroadcaster, defaultChain } from '@holdfast/cleanup-broadcaster'
 * import { identify } from '@libp2p/identify'
 * import { tcp } from '@libp2p/tcp'
 * import { createLibp2p } from 'libp2p'
 *
 * const node = await createLibp2p({
 *   addresses: { listen: ['/ip4/0.0.0.0/tcp/0'] },
 *   transports: [tcp()],
 *   connectionEncrypters: [noise()],
 *   streamMuxers: [yamux()],
 *   services: {
 *     identify: identify(),
 *     broadcaster: cleanupBroadcaster({
 *       middleware: defaultChain(),
 *       readyConditions: ['connected', 'identified']
 *     })
 *   }
 * })
 * const { broadcaster } = node.services
 *
 * // one stream, many subscribers; '*' sees everything
 * broadcaster.subscribe('peer:gone', ({ detail }) => console.info('gone', detail.peer.toString()))
 *
 * // readiness instead of sleeps
 * await node.dial(remoteAddr)
 * await broadcaster.whenReady(remotePeer, { timeout: 5_000 })
 *
 * // a request bound to the peer: rejects with ConnectionClosedError the moment the peer goes,
 * // not after its own timeout
 * const answer = await broadcaster.track(remotePeer, async (signal) => ask(remotePeer, { signal }), { timeout: 30_000 })
 *
 * // top-down cleanup: lower order runs first
 * broadcaster.onCleanup('request-cache', 10, (peer) => { cache.delete(peer.toString()) })
 * broadcaster.onCleanup('connection-pool', 90, async (peer) => { await pool.drop(peer) })
 *
 * // a dial that a cleanup can cancel at any of its three checkpoints
 * const connection = await broadcaster.dial(remotePeer, { signal })
 *
 * // logout: clean every peer and close every connection
 * await broadcaster.closeAll('user-logout')
 * ```
 *
 * Other holdfast services find it through the capability `@holdfast/cleanup-broadcaster`
 * (`serviceDependencies`), and publish their own events (`peer:held`, `path:changed`,
 * `member:joined`, ...) through it, so one subscription sees everything. All event types and
 * their details are declared in `HoldfastEvents` in `@holdfast/interface`.
 */

import { CleanupBroadcaster as CleanupBroadcasterClass } from './broadcaster.ts'
import type { CleanupBroadcaster, Clock, Middleware } from '@holdfast/interface'
import type { ComponentLogger, Libp2pEvents, Metrics, PeerId, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

export { defaults } from './constants.ts'
export { recovery, logging, metrics, timeout, validation, rateLimit, dedup, defaultDedupKey, defaultChain, productionChain, coreSchemas } from './middleware.ts'
export type { HandlerTimes, MetricsMiddleware, RateLimitOptions, Schemas, Validator } from './middleware.ts'
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
   * (ms), even if the peer connects again meanwhile. 0 turns the window off; at most
   * 2^31 - 1 ms, the longest a timer can wait.
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

export function cleanupBroadcaster (init: CleanupBroadcasterInit = {}): (components: CleanupBroadcasterComponents) => CleanupBroadcaster {
  return (components) => new CleanupBroadcasterClass(components, init)
}
