/**
 * The pure decisions of the connection manager: the default score, who a trim closes
 * (go-libp2p's `getConnsToClose`), when an automatic trim may run, decay ticks, idleness and
 * the per-direction limits. No libp2p imports, no timers: the manager gathers live state, calls
 * these, and acts.
 */

import { OUTBOUND_BONUS, STREAMS_BONUS } from './constants.ts'
import type { Limits, ScoreInput, ScoreParts, TrimMode } from '@holdfast/interface'

/** The settings a manager runs with: `Limits` plus the trim mode and its hysteresis */
export interface Settings extends Limits {
  trimMode: TrimMode
  hysteresis: number
}

/** The default hysteresis for the watermarks: the constant, capped so it never goes below lowWater */
export function defaultHysteresis (preferred: number, lowWater: number, highWater: number): number {
  return Math.max(1, Math.min(preferred, highWater - lowWater))
}

/** The connection count a trim goes down to */
export function trimTarget (s: Pick<Settings, 'trimMode' | 'lowWater' | 'highWater' | 'hysteresis'>): number {
  return s.trimMode === 'batch' ? s.lowWater : s.highWater - s.hysteresis
}

/** The default score's bonuses: +10 with an outbound connection, +20 with an open stream */
export function scoreBonus (outbound: number, streams: number): number {
  return (outbound > 0 ? OUTBOUND_BONUS : 0) + (streams > 0 ? STREAMS_BONUS : 0)
}

/** The default score's parts from a tag sum and the connection counts */
export function partsOf (tags: number, outbound: number, streams: number): ScoreParts {
  return { tags, outbound: outbound > 0 ? OUTBOUND_BONUS : 0, streams: streams > 0 ? STREAMS_BONUS : 0 }
}

/** The default score's parts of a score input */
function scoreParts (peer: Pick<ScoreInput, 'tags' | 'outbound' | 'streams'>): ScoreParts {
  let tags = 0
  for (const value of Object.values(peer.tags)) {
    tags += value
  }
  return partsOf(tags, peer.outbound, peer.streams)
}

/**
 * The default `score`: the sum of the peer's tag values, +10 when it has an outbound connection
 * (this node chose to dial it), +20 when it has at least one open stream (it is in use).
 * Wrap it to adjust the ranking rather than rewrite it.
 */
export function defaultScore (peer: ScoreInput): number {
  return scoreParts(peer).tags + scoreBonus(peer.outbound, peer.streams)
}

/** What the trim plan may do with a peer (`PlanPeers.status`) */
export const TRIMMABLE = 0
export const PROTECTED = 1
export const IN_GRACE = 2

/**
 * The connected peers as the trim plan sees them, one column per field: a trim of thousands of
 * peers allocates a few arrays, not an object per peer. Row `i` of every column is peer `i`.
 */
export interface PlanPeers {
  /** the peer ID strings: the last tie-break */
  keys: readonly string[]
  scores: Float64Array
  firstSeen: Float64Array
  /** open connections (not being closed) */
  connections: Uint32Array
  /** `TRIMMABLE`, `PROTECTED` or `IN_GRACE` */
  status: Uint8Array
  /**
   * 1 where `scores` holds only a lower bound, made exact by `PlanHooks.exactScore` before the
   * row can be chosen; absent when every score is exact
   */
  bounded?: Uint8Array
}

/** What `planTrim` calls back while it works; both optional */
export interface PlanHooks {
  /** the exact score of a `bounded` row, never below its bound; called at most once per row */
  exactScore?(row: number): number
  /** a row is chosen: called once per row of `PlanResult.close`, in its order; a trim starts closing the peer here */
  onChoose?(row: number): void
}

export interface PlanResult {
  /** row indices to close: in closing order, or in row order when `everyTrimmable` */
  close: number[]
  /**
   * The rows that cannot go keep the count at or above the target, so every trimmable row is
   * closed and none was ranked to choose it; `sortClosing(peers, close)` gives the closing order
   */
  everyTrimmable: boolean
  after: number
  shortfall: number
  protectedPeers: number
  gracePeers: number
}

/**
 * Closing order of rows `a` and `b`: lowest score first; on equal scores the peer seen most
 * recently goes first (long-lived peers are worth more, as in libp2p's pruner); then the peer ID
 * string, ascending; then the row, so the order is total and never depends on the algorithm.
 */
export function closingOrder (peers: PlanPeers, a: number, b: number): number {
  const { scores, firstSeen, keys } = peers
  if (scores[a] !== scores[b]) {
    return scores[a] - scores[b]
  }
  if (firstSeen[a] !== firstSeen[b]) {
    return firstSeen[b] - firstSeen[a]
  }
  if (keys[a] !== keys[b]) {
    return keys[a] < keys[b] ? -1 : 1
  }
  return a - b
}

/**
 * Whole peers to close, lowest first, until `connections <= target`. Protected peers and peers
 * inside their grace period are never chosen; what they keep above the target is the shortfall.
 * The trimmable rows go into a binary min-heap (built in O(n)) and are popped only while the
 * count is above the target: an incremental trim that closes ten peers out of thousands does
 * not sort them all.
 *
 * A `bounded` row at the front is scored exactly and sifted down again before it can be chosen.
 * Every other row's key is at most its exact key, so a row chosen with its exact score is the
 * lowest of all exact scores: the order is the one full scoring gives, while the costly part of
 * a score (reading each connection's streams) is paid only for the rows that reach the front,
 * just before `onChoose` touches the same connections. The exact scores are written into
 * `scores`, and `bounded` is cleared row by row.
 *
 * When the rows that cannot go keep the count at or above the target, every trimmable row goes
 * and no ranking is needed to choose them (`everyTrimmable`): they are scored and chosen in row
 * order, which for the caller is one sequential pass over its peers instead of a pass in score
 * order that jumps around memory. Their closing order is left to `sortClosing`, for whoever
 * needs it, when it is needed.
 */
export function planTrim (peers: PlanPeers, connections: number, target: number, hooks: PlanHooks = {}): PlanResult {
  const { status, bounded, scores } = peers
  const { exactScore, onChoose } = hooks
  if (bounded !== undefined && exactScore === undefined) {
    // before anything is chosen: a caller's onChoose starts closes, and never for a plan that cannot finish
    throw new TypeError('planTrim: bounded scores need hooks.exactScore')
  }
  let protectedPeers = 0
  let gracePeers = 0
  let trimmableConnections = 0
  const heap = new Int32Array(status.length)
  let size = 0
  for (let i = 0; i < status.length; i++) {
    if (status[i] === PROTECTED) {
      protectedPeers++
    } else if (status[i] === IN_GRACE) {
      gracePeers++
    } else {
      heap[size++] = i
      trimmableConnections += peers.connections[i]
    }
  }
  const close: number[] = []
  let after = connections
  if (after <= target || size === 0) {
    return { close, everyTrimmable: false, after, shortfall: Math.max(0, after - target), protectedPeers, gracePeers }
  }
  if (connections - trimmableConnections >= target) {
    for (let k = 0; k < size; k++) {
      const row = heap[k]
      if (bounded?.[row] === 1 && exactScore !== undefined) {
        bounded[row] = 0
        scores[row] = exactScore(row)
      }
      close.push(row)
      onChoose?.(row)
    }
    after -= trimmableConnections
    return { close, everyTrimmable: true, after, shortfall: after - target, protectedPeers, gracePeers }
  }
  for (let i = (size >> 1) - 1; i >= 0; i--) {
    siftDown(peers, heap, size, i)
  }
  while (after > target && size > 0) {
    const first = heap[0]
    if (bounded?.[first] === 1 && exactScore !== undefined) {
      bounded[first] = 0
      scores[first] = exactScore(first)
      siftDown(peers, heap, size, 0)
      continue
    }
    heap[0] = heap[--size]
    siftDown(peers, heap, size, 0)
    close.push(first)
    after -= peers.connections[first]
    onChoose?.(first)
  }
  return { close, everyTrimmable: false, after, shortfall: Math.max(0, after - target), protectedPeers, gracePeers }
}

/** `rows` in closing order (`closingOrder`), as a new array; their scores must be exact */
export function sortClosing (peers: PlanPeers, rows: readonly number[]): number[] {
  const heap = Int32Array.from(rows)
  let size = heap.length
  for (let i = (size >> 1) - 1; i >= 0; i--) {
    siftDown(peers, heap, size, i)
  }
  const sorted: number[] = []
  while (size > 0) {
    sorted.push(heap[0])
    heap[0] = heap[--size]
    siftDown(peers, heap, size, 0)
  }
  return sorted
}

function siftDown (peers: PlanPeers, heap: Int32Array, size: number, from: number): void {
  let i = from
  const item = heap[i]
  for (;;) {
    let child = 2 * i + 1
    if (child >= size) {
      break
    }
    if (child + 1 < size && closingOrder(peers, heap[child + 1], heap[child]) < 0) {
      child++
    }
    if (closingOrder(peers, heap[child], item) >= 0) {
      break
    }
    heap[i] = heap[child]
    i = child
  }
  heap[i] = item
}

/**
 * When an automatic trim may run: `'now'`, after `ms`, or `'never'` (not above highWater).
 * `lastTrimAt` undefined means no trim has run yet.
 */
export function autoTrimDue (connections: number, highWater: number, now: number, lastTrimAt: number | undefined, silencePeriod: number): 'now' | 'never' | number {
  if (connections <= highWater) {
    return 'never'
  }
  if (lastTrimAt === undefined) {
    return 'now'
  }
  const wait = lastTrimAt + silencePeriod - now
  return wait <= 0 ? 'now' : wait
}

/** Decay ticks of a tag registered at `origin` with `interval` that fall in `(from, to]` */
export function decayTicks (origin: number, interval: number, from: number, to: number): number {
  if (to <= from) {
    return 0
  }
  return Math.floor((to - origin) / interval) - Math.floor((from - origin) / interval)
}

/** A connection first seen without streams at `idleSince` is due for closing */
export function isIdle (idleSince: number, now: number, idleTimeout: number): boolean {
  return now - idleSince >= idleTimeout
}

/** Whether a new connection in a direction goes over its limit (protected peers never do) */
export function overLimit (current: number, max: number, isProtected: boolean): boolean {
  return !isProtected && current >= max
}
