/**
 * @packageDocumentation
 *
 * js-libp2p's built-in connection manager has one `maxConnections` and a pruner. This service
 * adds what go-libp2p's `BasicConnMgr` has and goes past it: low/high watermarks with a grace
 * period and a silence period, a batch or an incremental (no sawtooth) trim, a dry run that
 * explains every score, protection by tag, tag values and lazily computed decaying tags,
 * per-direction limits enforced before a stream can exist, an idle timeout, a reason on every
 * close, and a `ConnectionGater` with allow/deny lists and a realm hook for relay reservations.
 *
 * @example
 *
 * ```TypeScript
 * import { noise } from '@chainsafe/libp2p-noise'
 * import { yamux } from '@chainsafe/libp2p-yamux'
 * import { createGater, watermarkConnectionManager, decayFixed, bumpSumBounded } from '@holdfast/connection-manager'
 * import { TAGS } from '@holdfast/interface'
 * import { identify } from '@libp2p/identify'
 * import { tcp } from '@libp2p/tcp'
 * import { createLibp2p } from 'libp2p'
 *
 * const node = await createLibp2p({
 *   addresses: { listen: ['/ip4/0.0.0.0/tcp/0'] },
 *   transports: [tcp()],
 *   connectionEncrypters: [noise()],
 *   streamMuxers: [yamux()],
 *   // libp2p's own pruner stays as an emergency cap well above highWater (see the README)
 *   connectionManager: { maxConnections: 400 },
 *   connectionGater: createGater({ deny: [badPeer] }),
 *   services: {
 *     identify: identify(),
 *     connections: watermarkConnectionManager({
 *       lowWater: 100,
 *       highWater: 200,
 *       gracePeriod: 30_000,
 *       maxInbound: 150
 *     })
 *   }
 * })
 * const { connections } = node.services
 *
 * connections.protect(relayPeer, TAGS.relayActive)        // never trimmed, never idle-closed
 * connections.tagPeer(friend, 'app-friend', 50)            // counts in the score
 * const useful = connections.registerDecayingTag('useful', 60_000, decayFixed(1), bumpSumBounded(0, 100))
 * useful.bump(remotePeer, 10)
 *
 * console.info(connections.explainTrim())                  // who a trim would close now, and why
 * connections.addEventListener('connection:closed-by-manager', ({ detail }) => {
 *   console.info(detail.peer.toString(), 'closed:', detail.reason) // 'trim' | 'idle' | 'limit'
 * })
 * ```
 *
 * Other holdfast services find it through the capability `@holdfast/connection-manager` and
 * call `isProtected(peer)`. Its events are dispatched on the service and, when the node has a
 * cleanup broadcaster, published through it too; the manager then forgets a departed peer in
 * the last layer of the broadcaster's cleanup chain, so the layers above it can still read the
 * peer's tags. It also works alone, on a plain libp2p node.
 *
 * The ranking can be adjusted by wrapping the default score:
 *
 * ```TypeScript
 * import { defaultScore, watermarkConnectionManager } from '@holdfast/connection-manager'
 *
 * // a peer that dialed this node counts a little too
 * const connections = watermarkConnectionManager({
 *   score: (peer) => defaultScore(peer) + (peer.inbound > 0 ? 5 : 0)
 * })
 * ```
 */

import { WatermarkConnectionManager as WatermarkConnectionManagerClass } from './manager.ts'
import type { Clock, HoldfastEvents, ScoreFn, TrimMode, WatermarkConnectionManager } from '@holdfast/interface'
import type { ComponentLogger, ConnectionGater, Libp2pEvents, Metrics, PeerId, PeerStore, Startable, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

export { defaults, IDLE_PRESETS, PROTECTED_STORE_TAG, PROTECTED_STORE_TAG_VALUE } from './constants.ts'
export { defaultScore } from './policy.ts'
export { decayNone, decayFixed, decayLinear, decayExpireWhenInactive, bumpSumUnbounded, bumpSumBounded, bumpOverwrite } from './decay.ts'
export { createGater } from './gater.ts'
export type { GaterInit, HoldfastGater, RealmMembership } from './gater.ts'
export type { WatermarkConnectionManager, PeerConnInfo, ScoreInput, ScoreFn, ScoreParts, TrimCandidate, TrimPlan, TrimReport, TrimMode, ConnManagerStats, Limits, DecayingTag, DecayingValue, DecayFn, BumpFn, CloseReason } from '@holdfast/interface'

export interface WatermarkConnectionManagerInit {
  /**
   * A batch trim stops at this many connections. A whole number, at least 1.
   *
   * @default 100
   */
  lowWater?: number
  /**
   * More connections than this starts an automatic trim. A whole number above `lowWater`.
   *
   * @default 200
   */
  highWater?: number
  /**
   * ms: a peer first connected less than this ago is not trimmed. 0 turns it off.
   *
   * @default 30000
   */
  gracePeriod?: number
  /**
   * ms: at most one automatic trim per period (a manual `trim()` ignores it). 0 turns it off.
   *
   * @default 10000
   */
  silencePeriod?: number
  /**
   * `batch` trims to `lowWater`; `incremental` trims to `highWater - hysteresis`.
   *
   * @default 'batch'
   */
  trimMode?: TrimMode
  /**
   * How far below highWater an incremental trim goes: a whole number from 1 to
   * `highWater - lowWater`. Without it, 10, lowered to `highWater - lowWater` when the
   * watermarks are closer than that.
   *
   * @default 10
   */
  hysteresis?: number
  /**
   * Inbound connections over this are refused before any stream can be opened (protected peers
   * excepted). A whole number, or `Infinity` for no limit.
   *
   * @default Infinity
   */
  maxInbound?: number
  /**
   * Dials over this reject with `ConnectionLimitError` (protected peers excepted). A whole
   * number, or `Infinity` for no limit.
   *
   * @default Infinity
   */
  maxOutbound?: number
  /**
   * ms: a connection with no stream for this long is closed unless its peer is protected;
   * `Infinity` disables it. At most 2³¹−1 ms (about 24.8 days), the longest a timer can wait.
   * Presets by platform: `IDLE_PRESETS`; the default is `IDLE_PRESETS.desktop`.
   *
   * @default 300000
   */
  idleTimeout?: number
  /**
   * Ranks peers for a trim, lowest first. Wrap `defaultScore` to adjust it.
   *
   * @default defaultScore: the sum of the tag values, +10 with an outbound connection, +20 with an open stream
   */
  score?: ScoreFn
  /** @default the system clock */
  clock?: Clock
}

export interface WatermarkConnectionManagerComponents {
  peerId: PeerId
  events: TypedEventTarget<Libp2pEvents>
  connectionManager: ConnectionManager
  /** the node's gater: the per-direction limits join its gater chain at start and leave it on stop */
  connectionGater: ConnectionGater
  peerStore: PeerStore
  logger: ComponentLogger
  metrics?: Metrics
}

/** The events the service dispatches */
export type ConnectionManagerEventType = 'trim:started' | 'trim:completed' | 'limit:exceeded' | 'connection:closed-by-manager'

/** The service's event map: it dispatches these, and publishes the same through the cleanup broadcaster when present */
export type ConnectionManagerEvents = { [K in ConnectionManagerEventType]: CustomEvent<HoldfastEvents[K]> }

/** The service: the `WatermarkConnectionManager` contract, its events, and libp2p's lifecycle */
export interface WatermarkConnectionManagerService extends WatermarkConnectionManager, TypedEventTarget<ConnectionManagerEvents>, Startable {}

export function watermarkConnectionManager (init: WatermarkConnectionManagerInit = {}): (components: WatermarkConnectionManagerComponents) => WatermarkConnectionManagerService {
  return (components) => new WatermarkConnectionManagerClass(components, init)
}
