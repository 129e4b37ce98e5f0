/**
 * The contract of `@holdfast/connection-manager`, here so other services (the reconnector asks
 * `isProtected(peer)`) can depend on the shape without the implementation.
 */

import type { Introspectable } from './broadcaster.ts'
import type { ConnectionDirection } from './events.ts'
import type { AbortOptions, PeerId } from '@libp2p/interface'

/** Why the manager closed a connection */
export type CloseReason = 'trim' | 'idle' | 'limit'

/** `batch`: trim to `lowWater`; `incremental`: trim to `highWater - hysteresis` (no sawtooth) */
export type TrimMode = 'batch' | 'incremental'

/** What the manager knows about one connected peer */
export interface PeerConnInfo {
  peer: PeerId
  /** current value of every tag: `tagPeer` tags, decaying tags, and the peer's peer-store tags */
  tags: Record<string, number>
  /** the protection tags (empty when unprotected) */
  protections: string[]
  /** clock time of the first connection of the current visit */
  firstSeen: number
  /** still inside its grace period: never trimmed */
  inGrace: boolean
  connections: number
  inbound: number
  outbound: number
  /** open streams over all its connections */
  streams: number
  /** the score the trim ranks it by (lower goes first) */
  score: number
}

/** What a score function sees: everything but the score */
export type ScoreInput = Omit<PeerConnInfo, 'score'>

/** Replaceable scoring (`init.score`); higher keeps the peer longer */
export type ScoreFn = (peer: ScoreInput) => number

/** The default score's parts; with the default score, `score = tags + outbound + streams` */
export interface ScoreParts {
  /** sum of the tag values */
  tags: number
  /** 10 when the peer has an outbound connection */
  outbound: number
  /** 20 when the peer has at least one open stream */
  streams: number
}

export interface TrimCandidate {
  peer: PeerId
  score: number
  parts: ScoreParts
  connections: number
  firstSeen: number
}

/** `explainTrim()`: what a trim started now would do, without doing it */
export interface TrimPlan {
  mode: TrimMode
  /** open connections, not counting those the manager is already closing */
  connections: number
  /** the count the trim goes down to */
  target: number
  /** peers that would be closed, in closing order (lowest score first) */
  close: TrimCandidate[]
  /** connections left after the plan */
  after: number
  /** connections above `target` the plan cannot close (protected or in-grace peers) */
  shortfall: number
  /** connected peers skipped because they are protected */
  protectedPeers: number
  /** connected peers skipped because they are inside their grace period */
  gracePeers: number
}

export interface TrimReport {
  trigger: 'auto' | 'manual'
  mode: TrimMode
  before: number
  after: number
  target: number
  closed: PeerId[]
  closedConnections: number
  shortfall: number
  durationMs: number
}

export interface ConnManagerStats {
  connections: number
  /** peers with at least one connection */
  peers: number
  inbound: number
  outbound: number
  /** peers holding at least one protection, connected or not */
  protectedPeers: number
  trims: number
  lastTrim?: TrimReport
  /** connections the manager closed, by reason */
  closed: Record<CloseReason, number>
  /** connections refused by the per-direction limits */
  refused: Record<ConnectionDirection, number>
}

/** The limits `setLimits` can change at run time (validated together, applied all or nothing) */
export interface Limits {
  lowWater: number
  highWater: number
  /** ms */
  gracePeriod: number
  /** ms */
  silencePeriod: number
  maxInbound: number
  maxOutbound: number
  /** ms; `Infinity` disables idle closing */
  idleTimeout: number
}

/** One peer's value of a decaying tag, as decay and bump functions see it */
export interface DecayingValue {
  readonly tag: DecayingTag
  readonly peer: PeerId
  /** clock time the value was first set */
  readonly added: number
  /** clock time of the last bump (`added` before the first) */
  readonly lastBump: number
  readonly value: number
  /** clock time of this decay tick or bump (decay is computed lazily, so not always "now") */
  readonly at: number
}

/** Runs once per elapsed interval: the new value, and whether to drop the tag from the peer */
export type DecayFn = (value: DecayingValue) => { value: number, remove: boolean }

/** Runs on `bump(peer, delta)`: the new value */
export type BumpFn = (value: DecayingValue, delta: number) => number

export interface DecayingTag {
  readonly name: string
  /** ms between two decays */
  readonly interval: number
  /** adds to the peer's value through the tag's bump function (creates the value at 0 first) */
  bump(peer: PeerId, delta: number): void
  remove(peer: PeerId): void
  /** unregisters the tag and drops its values from every peer */
  close(): void
}

export interface WatermarkConnectionManager extends Introspectable {
  protect(peer: PeerId, tag: string): void
  /** true while other tags still protect the peer */
  unprotect(peer: PeerId, tag: string): boolean
  isProtected(peer: PeerId, tag?: string): boolean
  tagPeer(peer: PeerId, tag: string, value: number): void
  untagPeer(peer: PeerId, tag: string): void
  upsertTag(peer: PeerId, tag: string, update: (old: number) => number): void
  registerDecayingTag(name: string, interval: number, decay: DecayFn, bump: BumpFn): DecayingTag
  /** manual trim: ignores the silence period (and starts a new one) */
  trim(opts?: AbortOptions): Promise<TrimReport>
  /** dry run of `trim()`: who would go, and each score's parts */
  explainTrim(): TrimPlan
  /**
   * What the manager holds for a peer: a connected one, or, on a node with a cleanup
   * broadcaster, a departed one until its cleanup reaches the manager (so the cleanup layers
   * above it can still read its tags); undefined otherwise
   */
  info(peer: PeerId): PeerConnInfo | undefined
  stats(): ConnManagerStats
  setLimits(limits: Partial<Limits>): void
}
