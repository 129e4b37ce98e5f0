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
 * call `isProtected(peer)`. Its events are dispatched on the service and, when a cleanup
 * broadcaster is present, published through it too.
 */

import { GRACE_PERIOD, HIGH_WATER, HYSTERESIS, IDLE_PRESETS, IDLE_TIMEOUT, LOW_WATER, PROTECTED_STORE_TAG, PROTECTED_STORE_TAG_VALUE, SILENCE_PERIOD } from './constants.ts'
import { WatermarkConnectionManager as WatermarkConnectionManagerClass } from './manager.ts'
import type { Clock, HoldfastEvents, ScoreFn, TrimMode, WatermarkConnectionManager } from '@holdfast/interface'
import type { ComponentLogger, ConnectionGater, Libp2pEvents, Metrics, PeerId, PeerStore, Startable, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

export { createGater } from './gater.ts'
export type { GaterInit, HoldfastGater, RealmMembership } from './gater.ts'
export { decayNone, decayFixed, decayLinear, decayExpireWhenInactive, bumpSumUnbounded, bumpSumBounded, bumpOverwrite } from './decay.ts'
export { seedScore, scoreParts, planTrim, sortClosing, closingOrder, checkSettings, trimTarget, TRIMMABLE, PROTECTED, IN_GRACE } from './policy.ts'
export type { PlanHooks, PlanPeers, PlanResult, Settings, SettingProblem } from './policy.ts'
export type { WatermarkConnectionManager, PeerConnInfo, ScoreInput, ScoreFn, ScoreParts, TrimCandidate, TrimPlan, TrimReport, TrimMode, ConnManagerStats, Limits, DecayingTag, DecayingValue, DecayFn, BumpFn, CloseReason } from '@holdfast/interface'

export interface WatermarkConnectionManagerInit {
  /**
   * A trim stops at this many connections.
   *
   * @default 100
   */
  lowWater?: number
  /**
   * More connections than this starts an automatic trim.
   *
   * @default 200
   */
  highWater?: number
  /**
   * ms: a peer first connected less than this ago is not trimmed.
   *
   * @default 30000
   */
  gracePeriod?: number
  /**
   * ms: at most one automatic trim per period (a manual `trim()` ignores it).
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
   * How far below highWater an incremental trim goes (1..highWater - lowWater).
   *
   * @default min(10, highWater - lowWater)
   */
  hysteresis?: number
  /**
   * Inbound connections over this are refused before any stream can be opened (protected peers excepted).
   *
   * @default Infinity
   */
  maxInbound?: number
  /**
   * Dials over this reject with `ConnectionLimitError` (protected peers excepted).
   *
   * @default Infinity
   */
  maxOutbound?: number
  /**
   * ms: a connection with no stream for this long is closed unless its peer is protected;
   * `Infinity` disables it. Presets: `IDLE_PRESETS`.
   *
   * @default 300000 (IDLE_PRESETS.desktop)
   */
  idleTimeout?: number
  /**
   * Ranks peers for a trim, lowest first.
   *
   * @default seed 004: sum of tag values, +10 with an outbound connection, +20 with an open stream
   */
  score?: ScoreFn
  /** @default the system clock */
  clock?: Clock
}

export interface WatermarkConnectionManagerComponents {
  peerId: PeerId
  events: TypedEventTarget<Libp2pEvents>
  connectionManager: ConnectionManager
  /** read at start, swapped for one that chains the per-direction limits in front of it, restored on stop */
  connectionGater: ConnectionGater
  peerStore: PeerStore
  logger: ComponentLogger
  metrics?: Metrics
}

/** The defaults, in one place */
export const defaults = {
  lowWater: LOW_WATER,
  highWater: HIGH_WATER,
  gracePeriod: GRACE_PERIOD,
  silencePeriod: SILENCE_PERIOD,
  trimMode: 'batch',
  hysteresis: HYSTERESIS,
  maxInbound: Infinity,
  maxOutbound: Infinity,
  idleTimeout: IDLE_TIMEOUT
} as const

export { IDLE_PRESETS, PROTECTED_STORE_TAG, PROTECTED_STORE_TAG_VALUE }

export type ConnectionManagerEventType = 'trim:started' | 'trim:completed' | 'limit:exceeded' | 'connection:closed-by-manager'

/** The details of the events the service dispatches (declared in `HoldfastEvents`) */
export type ConnectionManagerEventDetails = Pick<HoldfastEvents, ConnectionManagerEventType>

/** The service's event map: it dispatches these, and publishes the same through the cleanup broadcaster when present */
export type ConnectionManagerEvents = { [K in ConnectionManagerEventType]: CustomEvent<HoldfastEvents[K]> }

/** The service: the `WatermarkConnectionManager` contract, its events, and libp2p's lifecycle */
export interface WatermarkConnectionManagerService extends WatermarkConnectionManager, TypedEventTarget<ConnectionManagerEvents>, Startable {}

export function watermarkConnectionManager (init: WatermarkConnectionManagerInit = {}): (components: WatermarkConnectionManagerComponents) => WatermarkConnectionManagerService {
  return (components) => new WatermarkConnectionManagerClass(components, init)
}
