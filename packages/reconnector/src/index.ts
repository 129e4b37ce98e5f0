/**
 * @packageDocumentation
 *
 * Mobile links flap. A peer that drops for two seconds should not show up in the app as
 * "offline" and then "online" again, and a peer that is really gone should not be hammered
 * with dials. This service holds a lost peer for a tolerance window, then reconnects with
 * exponential backoff and ±jitter, gives up after `maxAttempts` or `stateHoldTime`, and gives
 * the app a stable presence (`peer:online` / `peer:offline`) that hides the flaps. While the
 * network is known to be down (`pause()`), no attempts are spent; `resume()` retries every held
 * peer promptly, spread by jitter. All held peers share one heap and one clock timer.
 *
 * @example
 *
 * ```TypeScript
 * import { noise } from '@chainsafe/libp2p-noise'
 * import { yamux } from '@chainsafe/libp2p-yamux'
 * import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
 * import { reconnector } from '@holdfast/reconnector'
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
 *     // optional: removal then runs the broadcaster's full cleanup of the peer, and one
 *     // broadcaster subscription sees the reconnector's events too
 *     broadcaster: cleanupBroadcaster(),
 *     reconnector: reconnector({
 *       toleranceWindow: 5_000,
 *       maxAttempts: 5,
 *       watch: (peer) => friends.has(peer.toString())
 *     })
 *   }
 * })
 * const { reconnector: presence } = node.services
 *
 * presence.addEventListener('peer:online', ({ detail }) => { show(detail.peer, 'online') })
 * presence.addEventListener('peer:offline', ({ detail }) => { show(detail.peer, 'offline') })
 *
 * presence.watch(bestFriend)                    // hold this peer too
 * networkMonitor.on('offline', () => { presence.pause() })
 * networkMonitor.on('online', () => { presence.resume({ resetBackoff: true }) })
 * ```
 *
 * Which peers are held: protected peers of the holdfast connection manager (when the node has
 * one), the peers `watch(peer)` was called for, and those the `watch` predicate of the init
 * accepts (a realm passes its members here). libp2p's own keep-alive reconnect is kept off those
 * peers: see the README. A peer the app lets go of through the cleanup broadcaster (a cleanup
 * for `user-logout`, `app-terminating` or a `manual` cleanup of that peer) is removed rather
 * than reconnected; every other drop is held.
 */

import { Reconnector as ReconnectorClass } from './reconnector.ts'
import type { Clock, Reconnector } from '@holdfast/interface'
import type { AbortOptions, ComponentLogger, Libp2pEvents, Metrics, PeerId, PeerStore, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

export { backoffDelay } from './policy.ts'
export type { BackoffConfig } from './policy.ts'
export { PARKED_TAG_PREFIX, defaults } from './constants.ts'

export interface ReconnectorInit {
  /**
   * After a disconnect, wait this long (ms) before reconnecting: a peer back inside it costs
   * no dial and no event the app would show. 0: no window.
   *
   * @default 5000
   */
  toleranceWindow?: number

  /**
   * When both ends of a dropped connection hold each other, the end whose peer ID sorts higher
   * makes its first attempt this much later (ms), so the two dials do not cross: crossing
   * dials leave two connections, and the cleanup broadcaster closes one with its streams.
   * 0: no yield.
   *
   * @default 1000
   */
  crossingDelay?: number

  /**
   * Keep a lost peer's state at most this long (ms) after the disconnect, not counting time
   * spent paused. Must be longer than `toleranceWindow`.
   *
   * @default 30000
   */
  stateHoldTime?: number

  /**
   * Delay (ms) of the first attempt after the window.
   *
   * @default 1000
   */
  initialDelay?: number

  /**
   * Cap (ms) of the delay before jitter; `>= initialDelay`.
   *
   * @default 60000
   */
  maxDelay?: number

  /**
   * Each delay is `multiplier` times the previous one; `>= 1`.
   *
   * @default 2
   */
  multiplier?: number

  /**
   * Each delay is scaled by a uniform factor in [1 - jitter, 1 + jitter]; in [0, 1).
   *
   * @default 0.2
   */
  jitter?: number

  /**
   * Failed attempts after which the peer is removed.
   *
   * @default 5
   */
  maxAttempts?: number

  /**
   * More peers worth holding, beside protected peers and `watch(peer)`. Evaluated on connect,
   * on disconnect and when the peer's peer-store record changes.
   */
  watch?(peer: PeerId): boolean

  /**
   * How an attempt dials.
   *
   * @default the cleanup broadcaster's `dial` when the node has one (a removal's cleanup
   * cancels it), else `connectionManager.openConnection`
   */
  dial?(peer: PeerId, options: AbortOptions): Promise<unknown>

  /** @default the system clock */
  clock?: Clock

  /**
   * A uniform number in [0, 1), for the jitter
   *
   * @default Math.random
   */
  random?(): number
}

export interface ReconnectorComponents {
  /** ours: which end of a crossing yields (`crossingDelay`) */
  peerId: PeerId
  events: TypedEventTarget<Libp2pEvents>
  connectionManager: ConnectionManager
  peerStore: PeerStore
  logger: ComponentLogger
  metrics?: Metrics
}

export type { Reconnector, ReconnectorEvents, ReconnectorEventType, ReconnectorPeerState, ResumeOptions } from '@holdfast/interface'

export function reconnector (init: ReconnectorInit = {}): (components: ReconnectorComponents) => Reconnector {
  return (components) => new ReconnectorClass(components, init)
}
