/**
 * Decaying tags, computed lazily: a value remembers up to which time decay was applied, and the
 * ticks since then are applied when someone reads or bumps it. No timer per tag or per value.
 * Ticks fall at `registeredAt + k * interval`, as go-libp2p's per-tag ticker would.
 */

import { decayTicks } from './policy.ts'
import type { BumpFn, DecayFn, DecayingTag, DecayingValue } from '@holdfast/interface'
import type { PeerId } from '@libp2p/interface'

/** A registered decaying tag, as the manager holds it */
export interface TagRecord {
  readonly tag: DecayingTag
  readonly origin: number
  readonly decay: DecayFn
  readonly bump: BumpFn
}

/** One peer's value; `visited` is the time up to which decay ticks have been applied */
export interface DecayState {
  added: number
  lastBump: number
  value: number
  visited: number
}

function view (record: TagRecord, peer: PeerId, state: DecayState, at: number): DecayingValue {
  return { tag: record.tag, peer, added: state.added, lastBump: state.lastBump, value: state.value, at }
}

/**
 * Applies the ticks due by `now`; returns false when the decay function removed the value.
 * A tick that leaves the value unchanged is a fixed point: the remaining ticks are collapsed
 * into one at the latest tick (decay functions must be monotone in time for this, as all the
 * helpers below are: a value that did not move at one tick only moves again because time passed).
 */
export function applyDecay (record: TagRecord, peer: PeerId, state: DecayState, now: number): boolean {
  const { origin } = record
  const { interval } = record.tag
  let ticks = decayTicks(origin, interval, state.visited, now)
  let at = origin + (Math.floor((state.visited - origin) / interval) + 1) * interval
  while (ticks > 0) {
    const result = record.decay(view(record, peer, state, at))
    if (result.remove) {
      return false
    }
    const unchanged = result.value === state.value
    state.value = result.value
    ticks--
    if (unchanged && ticks > 0) {
      at += ticks * interval
      ticks = 1
    } else {
      at += interval
    }
  }
  state.visited = now
  return true
}

export function bumpValue (record: TagRecord, peer: PeerId, state: DecayState, delta: number, now: number): number {
  return record.bump(view(record, peer, state, now), delta)
}

// ------------------------------------------------------------------ decay and bump functions (go-libp2p's set)

/** Never decays */
export const decayNone = (): DecayFn => (v) => ({ value: v.value, remove: false })

/** Subtracts `minuend` per tick; removed at or below 0 */
export const decayFixed = (minuend: number): DecayFn => (v) => {
  const value = v.value - minuend
  return { value, remove: value <= 0 }
}

/** Multiplies by `coef` (0..1) per tick, rounding down; removed at or below 0 */
export const decayLinear = (coef: number): DecayFn => (v) => {
  const value = Math.floor(v.value * coef)
  return { value, remove: value <= 0 }
}

/** Keeps the value until no bump came for `after` ms, then removes it */
export const decayExpireWhenInactive = (after: number): DecayFn => (v) => ({ value: v.value, remove: v.at - v.lastBump >= after })

/** Adds the delta */
export const bumpSumUnbounded = (): BumpFn => (v, delta) => v.value + delta

/** Adds the delta, clamped to `[min, max]` */
export const bumpSumBounded = (min: number, max: number): BumpFn => (v, delta) => Math.min(max, Math.max(min, v.value + delta))

/** Replaces the value with the delta */
export const bumpOverwrite = (): BumpFn => (_v, delta) => delta
