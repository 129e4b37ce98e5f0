/**
 * The realm's pure decisions: no libp2p, no timers. The service gathers the live state, asks
 * here and acts on the answer. The circuit-address helpers of `@holdfast/interface` are pure too.
 */

import { isCircuitAddr, relayAddrOf } from '@holdfast/interface'

/** ms until the next announcement: the interval ± `jitter` of it, `random` in [0, 1) */
export function nextAnnounceDelay (interval: number, jitter: number, random: number): number {
  return Math.max(1, Math.round(interval * (1 + jitter * (2 * random - 1))))
}

/**
 * An announcement is accepted only when its seq is above the last one accepted from that peer
 * (no replay, no reordering back in time) and not below `floor`, the seq the peer proved in its
 * latest auth exchange (so nothing it announced before that exchange, a `leaving` among them,
 * can come back).
 */
export function isFreshSeq (last: { seq?: bigint, floor?: bigint } | undefined, seq: bigint): boolean {
  return (last?.seq == null || seq > last.seq) && (last?.floor == null || seq >= last.floor)
}

/** Why an announcement's issue time is refused: issued too long ago, or too far ahead of our clock */
export type AgeVerdict = 'ok' | 'stale' | 'future'

/**
 * An announcement is good for `maxAge` after its issue time, with `skew` allowed between the
 * sender's clock and ours in either direction.
 */
export function announcementAge (now: number, issuedAt: number, maxAge: number, skew: number): AgeVerdict {
  if (issuedAt > now + skew) {
    return 'future'
  }
  return now - issuedAt > maxAge + skew ? 'stale' : 'ok'
}

/**
 * ms a peer's last seq must be remembered after it was last updated: longer than any
 * announcement of it stays acceptable (its age limit, plus the skew on both clocks), so that no
 * announcement can be replayed once its seq is forgotten.
 */
export function seqRetention (maxAge: number, skew: number): number {
  return maxAge + 2 * skew
}

/** ms a peer that failed auth is denied for, after its `failures`-th failure (1, 2, ...): doubling from `initial`, capped at `max` */
export function rejectBackoff (failures: number, initial: number, max: number): number {
  return Math.min(max, initial * 2 ** Math.min(Math.max(0, failures - 1), 30))
}

/** the next seq to announce: above the last one, and at least the clock so a restarted node (seq lost) still goes up */
export function nextSeq (lastSeq: bigint, now: number): bigint {
  const fromClock = BigInt(Math.max(0, Math.floor(now)))
  return fromClock > lastSeq ? fromClock : lastSeq + 1n
}

export interface MemberLiveness {
  id: string
  /** clock time the member was last heard from (auth or announcement) */
  lastSeen: number
  /** holds an authenticated, open connection to us: alive whatever its announcements */
  connected: boolean
}

/** the members not heard from for `ttl` and not connected */
export function expiredMembers (members: Iterable<MemberLiveness>, now: number, ttl: number): string[] {
  const expired: string[] = []
  for (const member of members) {
    if (!member.connected && now - member.lastSeen >= ttl) {
      expired.push(member.id)
    }
  }
  return expired
}

export interface CandidateAddress {
  /** the multiaddr as a string */
  addr: string
  /** confirmed reachable (AutoNAT, several observers, a configured announce address, a listener libp2p trusts) */
  verified: boolean
}

/**
 * Only addresses confirmed reachable, and relay circuit addresses (reachable through their relay
 * by construction), are announced or published: an unconfirmed address would send members to
 * dial something nobody answers.
 */
export function publishableAddrs (candidates: Iterable<CandidateAddress>): string[] {
  const out = new Set<string>()
  for (const { addr, verified } of candidates) {
    if (verified || isCircuitAddr(addr)) {
      out.add(addr)
    }
  }
  return [...out]
}

/**
 * The relays an address list reaches the peer through, each once: the part of each circuit
 * address before `/p2p-circuit`, kept only when it names its relay (ends in `/p2p/<id>`), since
 * only such a relay can be dialled and reserved on.
 */
export function relayAddrs (addrs: Iterable<string>): string[] {
  const out = new Set<string>()
  for (const addr of addrs) {
    const relay = relayAddrOf(addr)
    if (relay?.getComponents().at(-1)?.name === 'p2p') {
      out.add(relay.toString())
    }
  }
  return [...out]
}

/** Where `realm.connect` found the addresses it dialled, in the order it tries them */
export type AddressSource = 'peer-store' | 'member-list' | 'dht' | 'address-book' | 'shared-relay' | 'rendezvous'

/**
 * The rendezvous epoch `now` falls in. Epochs are `epochLength` ms slices of Unix time, so
 * members agree on them without talking to each other.
 */
export function rendezvousEpoch (now: number, epochLength: number): number {
  return Math.floor(now / epochLength)
}

export interface ProvidePlan {
  /** the epochs whose CID to provide now */
  provide: number[]
  /** epochs provided before and now past: tell the content router to stop re-providing them */
  cancel: number[]
}

/**
 * One provide round at `now`: the current epoch, and the next one too once its boundary is
 * within one reprovide interval (the last round before the boundary covers it, so a member whose
 * clock already crossed meets us); every epoch provided before the current one is cancelled.
 */
export function provideRound (now: number, provided: Iterable<number>, epochLength: number, reprovideInterval: number): ProvidePlan {
  const epoch = rendezvousEpoch(now, epochLength)
  const provide = (epoch + 1) * epochLength - now <= reprovideInterval ? [epoch, epoch + 1] : [epoch]
  return { provide, cancel: [...provided].filter(e => e < epoch) }
}

/**
 * The epochs to look up at `now`: the current one and the previous one, so a member that has
 * not provided again since the boundary (or whose clock lags) is still met.
 */
export function epochsToFind (now: number, epochLength: number): number[] {
  const epoch = rendezvousEpoch(now, epochLength)
  return epoch > 0 ? [epoch, epoch - 1] : [epoch]
}

/**
 * ms until the next rendezvous round (a provide, or a lookup): the interval after a round that
 * worked; after `failures` failed rounds in a row, `retryDelay` doubled for each failure past the
 * first, and never more than the interval.
 */
export function nextRetryDelay (failures: number, interval: number, retryDelay: number): number {
  return failures <= 0 ? interval : Math.min(interval, retryDelay * 2 ** (failures - 1))
}

/** What is known of a peer whose auth exchange failed */
export interface AuthFailureFacts {
  /** why it failed (see `AuthFailure`) */
  reason: string
  /** this node opened the connection */
  outbound: boolean
  /** named infrastructure */
  infrastructure: boolean
  /** in the member list (from its announcements) */
  known: boolean
  /** holds another connection that passed auth */
  connected: boolean
  exclusive: boolean
}

/** What to do about it */
export interface AuthFailureVerdict {
  /** count it as a failed auth */
  count: boolean
  /** a listed member answered and is not of this realm now: out of the member list (`member:left`, `auth-failed`) */
  expel: boolean
  /** close the connection, as this rejection */
  close?: 'auth-failed' | 'auth-timeout'
  /** deny the peer for its backoff */
  deny: boolean
}

const NOT_A_MEMBER = new Set(['bad-proof', 'refused', 'unsupported', 'malformed'])

/** an auth failure that says the peer answered and is not of this realm (now): a wrong proof, a refusal, no realm protocol, garbage */
export function provesNonMember (reason: string): boolean {
  return NOT_A_MEMBER.has(reason)
}

/** failures that say nothing about the peer: a closed connection, our own stop, a second stream */
const NO_VERDICT = new Set(['closed', 'not-running', 'duplicate-stream'])

/**
 * The exclusive realm's rule. Infrastructure never authenticates, so its failures are expected.
 * A peer this node dialled that does not speak the realm protocol at all (`unsupported`: a
 * public DHT server met during a query) is kept: the node chose it, and it gets nothing
 * member-only. Any other non-member is closed, and denied unless the member list knows it (a
 * member is not denied for a broken stream).
 */
export function authFailureVerdict (facts: AuthFailureFacts): AuthFailureVerdict {
  if (facts.infrastructure || facts.reason === 'not-running') {
    return { count: false, expel: false, deny: false }
  }
  const expel = facts.known && provesNonMember(facts.reason)
  if (NO_VERDICT.has(facts.reason) || !facts.exclusive || facts.connected || (facts.outbound && facts.reason === 'unsupported')) {
    return { count: true, expel, deny: false }
  }
  return { count: true, expel, close: facts.reason === 'timeout' ? 'auth-timeout' : 'auth-failed', deny: !facts.known || expel }
}

/**
 * Sets `key` as the most recently updated entry of `map` (insertion order), then drops the least
 * recently updated ones past `max`: a table an outsider can grow stays bounded, and what goes
 * first is what was heard of longest ago.
 */
export function setBounded<K, V> (map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  for (const oldest of map.keys()) {
    if (map.size <= max) {
      return
    }
    map.delete(oldest)
  }
}
