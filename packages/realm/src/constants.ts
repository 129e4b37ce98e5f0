/**
 * Defaults of `realm(init)`, each with the reason for its value, and the limits the realm keeps
 * to. `defaults` at the end lists the init options that have a fixed default.
 */

import { systemClock } from '@holdfast/interface'
import type { RealmInit } from './index.ts'

/** ms; the member-list announce period: a few seconds of staleness is fine for a member list, and 50 nodes stay well under gossipsub's budget */
export const ANNOUNCE_INTERVAL = 10_000

/** ms (± 50 %, at most a quarter of the interval); the delay of the extra announcement made when a new member or topic peer appears: long enough to batch a burst of joins into one message, short enough that a newcomer learns the realm well within one interval */
export const ANNOUNCE_SOON_DELAY = 250

/** ± share of the announce interval drawn at random, so members started together do not announce in lockstep */
export const ANNOUNCE_JITTER = 0.2

/** member TTL in announce intervals: three missed announcements, so one lost message never expires a member */
export const MEMBER_TTL_INTERVALS = 3

/** ms; an auth exchange is two round trips, so 5 s covers a relayed mobile path with room to spare */
export const AUTH_TIMEOUT = 5_000

/** bytes; an announcement is a signed peer record with a handful of addresses: 16 KiB is 10x that and stops memory-exhaustion by one message */
export const MAX_MESSAGE_SIZE = 16 * 1024

/** bytes; the PSK must carry at least 256 bits, the strength of the keys derived from it */
export const MIN_PSK_LENGTH = 32

/** bytes of each auth nonce: 256 random bits never repeat, so a recorded proof never matches a new exchange */
export const NONCE_LENGTH = 32

/** the value of the `realm-member` peer-store tag: high enough to outrank casual peers, below the 100 gossipsub gives mesh peers */
export const MEMBER_TAG_VALUE = 50

/** relay circuit addresses announced at most (a member holds a few reservations; a flood of them is a sign of abuse) */
export const MAX_RELAYS = 8

/** ms; a realm DHT record is re-put at most this often (and at once when the addresses change): DHT puts cost a query to the 20 closest peers */
export const DHT_REPUBLISH_INTERVAL = 10 * 60_000

/** ms; a peer that failed realm auth is denied for this long first, doubling on each new failure: long enough that a redial loop costs the outsider, short enough that a member whose PSK was just fixed gets back in soon */
export const REJECT_BACKOFF_INITIAL = 10_000

/** ms; the cap of that doubling: an outsider retries at most about once every 10 minutes */
export const REJECT_BACKOFF_MAX = 10 * 60_000

/** rejected peers remembered at once: each entry is about 100 bytes, so a flood of throw-away identities costs at most about 1 MB; the oldest entry goes first */
export const MAX_REJECTED_PEERS = 10_000

/** ms; how far ahead or behind a member's clock may be: announcements carry their issue time, and phones and laptops are routinely off by seconds, rarely by more than half a minute */
export const CLOCK_SKEW = 30_000

/** last seqs remembered at once (live, departed and expired members): well above any realm size we target, so an entry is only ever dropped after its TTL */
export const MAX_SEQ_ENTRIES = 10_000

/** realm DHT records a member node stores at most, all peers together: one per member by construction, so this is a realm of 4,096 members (at most 64 MiB of 16 KiB records) */
export const MAX_DHT_RECORDS = 4_096

/** provider records a member node stores at most in the realm DHT: members provide only the rendezvous keys, a few per member */
export const MAX_DHT_PROVIDERS = 4_096

/** ms a member has to send its one address-book request: it is already connected, so this is plenty, and a stalled stream is not held longer */
export const ADDRESS_BOOK_TIMEOUT = 5_000
/**
 * ms; the rendezvous CID changes every epoch. 6 h: a member re-provides each CID only a handful
 * of times, yet the DHT servers storing one CID's provider records (the ones XOR-closest to it)
 * see the realm's members together for hours, not days: the next CIDs land on other servers
 */
export const RENDEZVOUS_EPOCH = 6 * 60 * 60_000

/**
 * ms; how often a member provides the rendezvous CID again. 1 h: a record lost to DHT server
 * churn, or stale after an address change, is repaired within the hour, and the last round
 * before an epoch boundary provides the next epoch's CID too; a round costs one DHT walk and
 * about 20 ADD_PROVIDER messages per CID (kad-dht's own records live 48 h)
 */
export const RENDEZVOUS_REPROVIDE_INTERVAL = 60 * 60_000

/**
 * ms; the first retry after a failed provide round (no DHT peer yet, no content router),
 * doubling on each failure up to the reprovide interval: a node that just started usually has
 * DHT peers within seconds, and waiting a whole interval would hide it for an hour
 */
export const RENDEZVOUS_RETRY_DELAY = 10_000

/**
 * ms; the bound of one provide round. kad-dht sends ADD_PROVIDER only once its closest-peers
 * walk has ended, so a round cut short stores nothing: 3 min is kad-dht's own default query
 * timeout, which a walk of the public DHT fits in
 */
export const RENDEZVOUS_PROVIDE_TIMEOUT = 180_000

/**
 * ms; the bound of one `find()` unless the caller's signal ends it sooner. Providers are
 * yielded as the walk meets them, and a walk of the public DHT meets most of them within
 * tens of seconds
 */
export const RENDEZVOUS_FIND_TIMEOUT = 30_000

/** providers one `find()` yields at most: kad-dht's K, which is also how many providers one kad-dht lookup returns per key */
export const RENDEZVOUS_FIND_LIMIT = 20

/** ms between rendezvous lookups when nothing else triggers one: a newcomer finds the members that came before it right after its own provide, so this is only the safety net for a pair that missed each other */
export const RENDEZVOUS_LOOKUP_INTERVAL = 5 * 60_000

/** ms before a lone member looks up the rendezvous again, doubling up to the lookup interval: members started together provide at the same moment, and each may look up just before the other's record lands */
export const RENDEZVOUS_LOOKUP_RETRY = 1_000

/** `natType` announced when the app says nothing: the realm does not probe its NAT itself */
export const NAT_TYPE = 'unknown'

/**
 * The init options of `realm(init)` that have a fixed default, filled once by `configOf`.
 * `memberTtl` is not here: its default follows `announceInterval` (`MEMBER_TTL_INTERVALS` of
 * them), whatever that is set to.
 */
export const defaults = {
  exclusive: true,
  infrastructure: Object.freeze([]) as readonly NonNullable<RealmInit['infrastructure']>[number][],
  announceInterval: ANNOUNCE_INTERVAL,
  authTimeout: AUTH_TIMEOUT,
  clockSkew: CLOCK_SKEW,
  maxMessageSize: MAX_MESSAGE_SIZE,
  natType: NAT_TYPE,
  relayMembersOnly: true,
  dht: true,
  rendezvous: true,
  serveAddressBook: true,
  clock: systemClock
} as const
