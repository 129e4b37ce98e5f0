/**
 * Pure decisions of the reconnector: no libp2p objects, no timers. The service gathers the
 * facts, asks here, and applies the answer.
 */

import { KEEP_ALIVE_PREFIX, PARKED_TAG_PREFIX } from './constants.ts'
import type { CleanupReason, HoldfastEvents } from '@holdfast/interface'

export type PeerState = 'connected' | 'held' | 'reconnecting' | 'removed'
export type RemovalReason = HoldfastEvents['peer:removed']['reason']

/** The exponential backoff with jitter of the reconnect attempts (see `backoffDelay`) */
export interface BackoffConfig {
  /** ms, the delay of the first attempt before jitter */
  initialDelay: number
  /** ms, the cap of the delay before jitter */
  maxDelay: number
  /** each delay is this many times the one before; at least 1 */
  multiplier: number
  /** each delay is scaled by a factor in [1 - jitter, 1 + jitter]; in [0, 1) */
  jitter: number
}

/**
 * The delay before attempt `attempt` (0-based):
 * `min(initialDelay * multiplier^attempt, maxDelay) * (1 ± jitter)`, where `random` in [0, 1)
 * picks the point in the band (uniform when `random` is). Whole milliseconds, so a timer fires
 * exactly on it; the band's ends are kept.
 */
export function backoffDelay (attempt: number, config: BackoffConfig, random: number): number {
  const [min, max] = delayBand(attempt, config)
  const r = Number.isFinite(random) ? Math.min(Math.max(random, 0), 1) : 0.5
  const delay = Math.round(min + (max - min) * r)
  // rounding must not leave the band when whole milliseconds fit in it
  const low = Math.ceil(min)
  const high = Math.floor(max)
  return low <= high ? Math.min(high, Math.max(low, delay)) : delay
}

/** The [min, max] a jittered delay of attempt `attempt` (0-based) falls in */
export function delayBand (attempt: number, config: BackoffConfig): [number, number] {
  const base = Math.min(config.initialDelay * config.multiplier ** Math.max(0, attempt), config.maxDelay)
  return [base * (1 - config.jitter), base * (1 + config.jitter)]
}

/**
 * Extra wait before the first attempt after the window: of two ends that both hold each other,
 * the one whose peer ID sorts higher yields, so their dials do not cross (both ends order the
 * pair the same way). Any other attempt, and `resume()` or `reconnectNow()`, does not wait.
 */
export function crossingYield (localPeer: string, remotePeer: string, crossingDelay: number): number {
  return localPeer > remotePeer ? crossingDelay : 0
}

/** What a held peer waits for next */
export type DeadlineKind = 'window' | 'attempt' | 'hold'

export interface HeldTiming {
  state: PeerState
  /** end of the tolerance window (state `held`) */
  windowEndsAt: number
  /** the next scheduled attempt; Infinity while a dial is in flight or none is scheduled */
  nextAttemptAt: number
  /** disconnect + stateHoldTime (+ time spent paused) */
  holdDeadline: number
}

/**
 * Which deadline fires first. The hold deadline wins a tie: no dial is started at the moment
 * the peer's state runs out. Connected and removed peers have none.
 */
export function nextDeadline (timing: HeldTiming): { at: number, kind: DeadlineKind } | undefined {
  if (timing.state !== 'held' && timing.state !== 'reconnecting') {
    return undefined
  }
  const at = timing.state === 'held' ? timing.windowEndsAt : timing.nextAttemptAt
  if (timing.holdDeadline <= at) {
    return { at: timing.holdDeadline, kind: 'hold' }
  }
  return { at, kind: timing.state === 'held' ? 'window' : 'attempt' }
}

/** What happened to a watched peer */
export type Input =
  | { type: 'connected' }
  /** `released`: a cleanup let go of the peer while it was connected */
  | { type: 'disconnected', released?: boolean }
  | { type: 'window-passed' }
  /** `resume()` or `reconnectNow()`: the window is skipped */
  | { type: 'retry-now' }
  | { type: 'attempt-failed', attempts: number, maxAttempts: number }
  | { type: 'hold-expired' }
  | { type: 'unwatched' }
  /** a cleanup of the peer let go of it (see `releasesPeer`) */
  | { type: 'released' }

export interface Transition {
  state: PeerState
  /** set when the input removes the peer */
  removed?: RemovalReason
  /** the peer is back after being held: `peer:recovered` */
  recovered?: boolean
  /** the stable presence the app should now be told about */
  presence?: 'online' | 'offline'
  /** a connected peer a cleanup let go of: its disconnect removes it instead of holding it */
  releaseOnDisconnect?: boolean
}

/**
 * The state machine: connected → held → reconnecting → connected | removed.
 * `undefined` is a peer the reconnector has no entry for (never seen, or forgotten after a
 * removal). The app sees `online` on a first connect and after a removal, `offline` only on a
 * removal of a peer it was told was online, never on a flap.
 */
export function transition (state: PeerState | undefined, input: Input): Transition {
  const rule = RULES[input.type] as (state: PeerState | undefined, lost: boolean, input: Input) => Transition | undefined
  // an input that means nothing in this state leaves it as it is
  return rule(state, state === 'held' || state === 'reconnecting', input) ?? { state: state ?? 'removed' }
}

const RULES: { [T in Input['type']]: (state: PeerState | undefined, lost: boolean, input: Extract<Input, { type: T }>) => Transition | undefined } = {
  connected: (state, lost) => {
    if (lost) {
      return { state: 'connected', recovered: true }
    }
    return state === 'connected' ? { state } : { state: 'connected', presence: 'online' }
  },
  disconnected: (state, _lost, input) => {
    if (state !== 'connected') {
      return undefined
    }
    return input.released === true ? { state: 'removed', removed: 'cleaned-up', presence: 'offline' } : { state: 'held' }
  },
  'window-passed': (state) => state === 'held' ? { state: 'reconnecting' } : undefined,
  'retry-now': (_state, lost) => lost ? { state: 'reconnecting' } : undefined,
  'attempt-failed': (state, _lost, input) => {
    if (state !== 'reconnecting') {
      return undefined
    }
    return input.attempts >= input.maxAttempts ? { state: 'removed', removed: 'attempts-exhausted', presence: 'offline' } : { state }
  },
  'hold-expired': (_state, lost) => lost ? { state: 'removed', removed: 'hold-expired', presence: 'offline' } : undefined,
  // a connected peer is simply forgotten: it is not offline, the app stops hearing about it
  unwatched: (_state, lost) => lost ? { state: 'removed', removed: 'unwatched', presence: 'offline' } : { state: 'removed' },
  released: (state, lost) => {
    if (lost) {
      return { state: 'removed', removed: 'cleaned-up', presence: 'offline' }
    }
    // a connected peer goes when its connections, which the cleanup closes, are gone
    return state === 'connected' ? { state, releaseOnDisconnect: true } : undefined
  }
}

/**
 * Whether a cleanup of a peer for `reason` means the app let go of it: the user logged out,
 * the app is closing, or the app cleaned up this one peer on purpose. Such a peer is removed
 * rather than held and reconnected. Every other cleanup (the peer disconnected, the network
 * went away, a path or a connection is being re-made) is what the reconnector is there to
 * bridge, and a shutdown is left to `stop()`.
 */
export function releasesPeer (reason: CleanupReason): boolean {
  return reason === 'user-logout' || reason === 'app-terminating' || reason === 'manual'
}

/** A peer-store tag write: `undefined` deletes the tag */
export type TagPlan = Record<string, { value: number } | undefined>

/**
 * Hides a watched peer's `keep-alive*` tags from libp2p's reconnect queue by renaming them
 * (values kept, so the pruner ranks the peer the same). Undefined when there is nothing to do.
 */
export function parkKeepAliveTags (tags: ReadonlyMap<string, { value: number }>): TagPlan | undefined {
  return renameTags(tags, name => name.startsWith(KEEP_ALIVE_PREFIX) ? PARKED_TAG_PREFIX + name : undefined)
}

/** Puts parked tags back under their own names (unwatch, stop) */
export function restoreKeepAliveTags (tags: ReadonlyMap<string, { value: number }>): TagPlan | undefined {
  return renameTags(tags, name => name.startsWith(PARKED_TAG_PREFIX) ? name.slice(PARKED_TAG_PREFIX.length) : undefined)
}

/**
 * Deletes parked tags: what libp2p's own reconnect does to `keep-alive*` tags when it gives up
 * on a peer, done when holdfast gives up on it.
 */
export function dropParkedTags (tags: ReadonlyMap<string, { value: number }>): TagPlan | undefined {
  return renameTags(tags, name => name.startsWith(PARKED_TAG_PREFIX) ? null : undefined)
}

export function hasKeepAliveTag (tags: ReadonlyMap<string, unknown>): boolean {
  for (const name of tags.keys()) {
    if (name.startsWith(KEEP_ALIVE_PREFIX)) {
      return true
    }
  }
  return false
}

/** `rename` returns the new name, null to delete, undefined to leave the tag alone */
function renameTags (tags: ReadonlyMap<string, { value: number }>, rename: (name: string) => string | null | undefined): TagPlan | undefined {
  let plan: TagPlan | undefined
  for (const [name, tag] of tags) {
    const to = rename(name)
    if (to === undefined) {
      continue
    }
    plan ??= {}
    plan[name] = undefined
    if (to !== null) {
      plan[to] = { value: tag.value }
    }
  }
  return plan
}
