/**
 * Pure decisions of the path selector: which path carries a peer's traffic, what the NAT
 * matrix says about punching, the RTT average, the mode and the retry delay. No libp2p
 * objects, no timers: the service gathers live state, calls these, and applies the result.
 */

import { InvalidArgumentError } from '@holdfast/interface'
import { RTT_SWITCHING_MIN_MS } from './constants.ts'
import type { PathKind, PathMode, PathStatus } from '@holdfast/interface'

/**
 * What a path selection looks at: one open (or just closed) path to a peer, as plain data.
 * The service lists a peer's paths in the order they opened.
 */
export interface PathCandidate {
  /** the connection ID; identifies `current` */
  readonly id: string
  readonly kind: PathKind
  /** `failing`: demoted by consecutive failures but still open; `closed`: never picked */
  readonly status: PathStatus
  /** RTT average in ms; unknown ranks after every known RTT of the same rank */
  readonly rttMs?: number
  /** a direct path made through a relay (WebRTC over the relay, DCUtR), the relay kept as backup */
  readonly holePunched?: boolean
  /** relayed through a relay of the app's realm */
  readonly realmRelay?: boolean
}

/**
 * A path choice, the service's `selectPath` option: given a peer's candidates and the path
 * it uses now (if any), the path its traffic should use, or `undefined` for none. It must
 * return one of `candidates` (the service matches it by `id`) and must not throw; a choice
 * that breaks either rule is logged and replaced by the default `selectPath`'s.
 */
export type SelectPath = (candidates: readonly PathCandidate[], current?: PathCandidate) => PathCandidate | undefined

/** Rank of a healthy path; lower wins */
const RANK_DIRECT = 0
const RANK_HOLE_PUNCHED = 1
const RANK_REALM_RELAY = 2
const RANK_ANY_RELAY = 3
/** added to the rank of a failing path, so it sorts below every healthy one */
const RANK_FAILING = 4

function rankOf (c: PathCandidate): number {
  let rank: number
  if (c.kind === 'direct') {
    rank = c.holePunched === true ? RANK_HOLE_PUNCHED : RANK_DIRECT
  } else {
    rank = c.realmRelay === true ? RANK_REALM_RELAY : RANK_ANY_RELAY
  }
  return c.status === 'failing' ? rank + RANK_FAILING : rank
}

/**
 * The default path choice: the path a peer's traffic should use, or `undefined` when none is
 * open. One pass, no allocation.
 *
 * Order: a direct path; a hole-punched direct path (its NAT mapping can expire, so a plain
 * direct one is preferred); a path through a realm relay; any relay. Within a rank the lowest
 * RTT wins, an unknown RTT last. A failing path ranks below every healthy one; closed paths
 * are never picked.
 *
 * Switching: while `current` is healthy and of the same rank as the best challenger, it keeps
 * the traffic until the challenger's RTT is lower by at least `RTT_SWITCHING_MIN_MS`
 * (`best + 5 <= current` switches: exactly 5 ms better switches, 4.9 ms better does not).
 * Across ranks the better rank takes over at once. A current path with an unknown RTT gives
 * way to a measured one of its rank.
 *
 * Ties (same rank, same or both unknown RTT): `current` if it is one of them, else the
 * earliest in `candidates`. The service lists paths in the order they opened, so the oldest
 * path, the one that has proven itself longest, wins.
 */
export function selectPath<T extends PathCandidate> (candidates: readonly T[], current?: PathCandidate): T | undefined {
  let best: T | undefined
  let bestRank = Number.POSITIVE_INFINITY
  let bestRtt = Number.POSITIVE_INFINITY
  let incumbent: T | undefined
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]
    if (c.status === 'closed') {
      continue
    }
    if (current !== undefined && c.id === current.id) {
      incumbent = c
    }
    const rank = rankOf(c)
    const rtt = c.rttMs ?? Number.POSITIVE_INFINITY
    if (rank < bestRank || (rank === bestRank && rtt < bestRtt)) {
      best = c
      bestRank = rank
      bestRtt = rtt
    }
  }
  if (incumbent === undefined || incumbent === best) {
    return best
  }
  const rank = rankOf(incumbent)
  if (rank !== bestRank || rank >= RANK_FAILING) {
    return best
  }
  const rtt = incumbent.rttMs ?? Number.POSITIVE_INFINITY
  // equal RTTs (two unknown ones included) keep the incumbent: Infinity + 5 <= Infinity would switch
  return rtt !== bestRtt && bestRtt + RTT_SWITCHING_MIN_MS <= rtt ? best : incumbent
}

/** The exponentially weighted moving average of RTT samples; the first sample is taken as is */
export function updateRtt (average: number | undefined, sample: number, alpha: number): number {
  return average === undefined ? sample : average + alpha * (sample - average)
}

/**
 * A peer's mode from the kind of its best path: a direct best path is `direct-primary`; a
 * relayed one is `fallback` when the peer had a direct path before (it was `direct-primary` or
 * already `fallback`), else `relay-only`; no path leaves no mode.
 */
export function nextMode (previous: PathMode | undefined, best: PathKind | undefined): PathMode | undefined {
  if (best === undefined) {
    return undefined
  }
  if (best === 'direct') {
    return 'direct-primary'
  }
  return previous === 'direct-primary' || previous === 'fallback' ? 'fallback' : 'relay-only'
}

/** `none`: a public address, no NAT */
export type NatType = 'none' | 'full-cone' | 'restricted' | 'symmetric' | 'unknown'

/** `direct`: dial it; `punch`: hole punching should work; `punch-try`: it may; `relay`: don't bother */
export type NatDecision = 'direct' | 'punch' | 'punch-try' | 'relay'

export const NAT_TYPES: readonly NatType[] = Object.freeze(['none', 'full-cone', 'restricted', 'symmetric', 'unknown'])

type NattedType = 'full-cone' | 'restricted' | 'symmetric'

/**
 * Initiator (row) by target (column). A full-cone NAT lets anyone reach a mapping once it
 * exists, a restricted one only the address it sent to, and a symmetric one uses a new,
 * unpredictable mapping per destination; the more restrictive the pair, the less likely a
 * punch works.
 */
const NAT_MATRIX: Readonly<Record<NattedType, Readonly<Record<NattedType, NatDecision>>>> = {
  'full-cone': { 'full-cone': 'direct', restricted: 'punch', symmetric: 'punch-try' },
  restricted: { 'full-cone': 'punch', restricted: 'punch-try', symmetric: 'relay' },
  // both symmetric or restricted against symmetric: the mappings can't be predicted, punching only wastes time
  symmetric: { 'full-cone': 'punch-try', restricted: 'relay', symmetric: 'relay' }
}

/**
 * What to do about a direct path between `local` (the initiator) and `remote`; `relay` skips
 * the upgrade.
 *
 * Between two NATs of known type: the 3x3 matrix above. A side without NAT (`none`) can
 * always be reached directly or dial back over the relay's signalling channel, so `none` on
 * either side is `direct`; otherwise `unknown` on either side is `punch-try`: not knowing is
 * no reason to give up.
 */
export function natDecision (local: NatType, remote: NatType): NatDecision {
  if (!isNatType(local)) {
    throw new InvalidArgumentError(`unknown NAT type ${String(local)}`, 'local')
  }
  if (!isNatType(remote)) {
    throw new InvalidArgumentError(`unknown NAT type ${String(remote)}`, 'remote')
  }
  if (local === 'none' || remote === 'none') {
    return 'direct'
  }
  if (local === 'unknown' || remote === 'unknown') {
    return 'punch-try'
  }
  return NAT_MATRIX[local][remote]
}

export function isNatType (value: unknown): value is NatType {
  return typeof value === 'string' && NAT_TYPES.includes(value as NatType)
}

export type PresetName = 'mobile' | 'desktop' | 'server' | 'test'

export interface KeepAlivePreset {
  /** ms an idle path may live before the network (a NAT mapping, a relay) is assumed to drop it */
  idleTimeoutMs: number
  /** ms between two pings of the path in use; feeds its RTT and failure count */
  heartbeatIntervalMs: number
  /** ms of silence after which a path not in use (the relay backup) is pinged so it stays open */
  keepAlivePeriodMs: number
}

/** Delay before retry number `attempt` (0-based): `initial * 2^attempt`, capped at `max` */
export function retryDelay (attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(initialMs * 2 ** attempt, maxMs)
}
