/**
 * The contract of `@holdfast/realm`: PSK-authenticated membership, the member list, and
 * connect-by-peer-ID inside the realm.
 */

import type { Introspectable } from './broadcaster.ts'
import type { HoldfastEvents } from './events.ts'
import type { AbortOptions, Connection, PeerId, TypedEventTarget } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Why a member-list announcement was refused */
export type RejectReason = 'malformed' | 'too-big' | 'unsealed' | 'not-sender' | 'replay' | 'stale' | 'future'

/** Why an auth exchange failed */
export type AuthFailure = 'bad-proof' | 'refused' | 'malformed' | 'timeout' | 'duplicate-stream' | 'unsupported' | 'stream-error' | 'closed' | 'not-running'

/** Why an exclusive realm closed or refused a connection */
export type RealmRejectReason = 'auth-failed' | 'auth-timeout' | 'denied'

export type RealmMemberLeftReason = HoldfastEvents['member:left']['reason']

/** The realm's own events: the `member:*` ones of `HoldfastEvents`, plus rejections for monitoring */
export type RealmEvents = {
  [K in 'member:joined' | 'member:updated' | 'member:left']: CustomEvent<HoldfastEvents[K]>
} & {
  /** a member-list announcement was refused (its sender's gossipsub score drops) */
  'announcement:rejected': CustomEvent<{ from: PeerId, reason: RejectReason }>
  /** a peer that is neither a member nor named infrastructure was disconnected or refused (exclusive realms) */
  'realm:rejected': CustomEvent<{ peer: PeerId, reason: RealmRejectReason }>
  /** this node, a relay, refused a reservation to a peer that is not an authenticated member */
  'reservation:denied': CustomEvent<{ peer: PeerId }>
}

export interface RealmMember {
  peerId: PeerId
  /** addresses from its latest announcement (reachable ones and relay circuits) */
  addrs: Multiaddr[]
  /** the relays it holds reservations on */
  relays: Multiaddr[]
  natType: string
  /** clock time it was last heard from */
  lastSeen: number
  /** holds an authenticated connection to this node right now */
  authenticated: boolean
}

export interface RealmStats {
  authSucceeded: number
  /** failed auth exchanges with peers that are not named infrastructure, all reasons together */
  authFailed: number
  authFailures: Partial<Record<AuthFailure, number>>
  announcementsSent: number
  announcementsAccepted: number
  /** announcements refused, by reason */
  rejected: Record<RejectReason, number>
  /** connections of non-members closed or refused (exclusive realms), by reason */
  connectionsRejected: Record<RealmRejectReason, number>
  reservationsDenied: number
  /** circuits through this relay refused because their source or destination is not a member */
  circuitsDenied: number
  /** member-only streams (the realm DHT, the address book) refused to non-members */
  accessDenied: number
}

export interface Realm extends TypedEventTarget<RealmEvents>, Introspectable {
  /** public: derived from the PSK, names the realm's protocols and topic */
  readonly id: string
  members(): RealmMember[]
  isMember(peer: PeerId): boolean
  /** one of the `infrastructure` peers the app named */
  isInfrastructure(peer: PeerId): boolean
  /** runs (or joins) the auth exchange on a connection; rejects with `RealmAuthError` */
  authenticate(connection: Connection, opts?: AbortOptions): Promise<void>
  /**
   * reaches a peer by its peer ID alone and resolves once it is authenticated and able to carry
   * streams; `NotRealmMemberError` when the peer was reached and is not a member,
   * `PeerUnreachableError` when no address reached it. With a cleanup broadcaster on the node, a
   * cleanup of the peer rejects it at once with `ConnectionClosedError` and aborts its dial
   */
  connect(peer: PeerId, opts?: AbortOptions): Promise<Connection>
  /** announces now (also done on start, every interval and on address change) */
  announce(): Promise<void>
  /** puts this node's realm record on the DHT now (announce() does it in the background when due) */
  publishRecord(opts?: AbortOptions): Promise<void>
  /** tells the members this node leaves (they drop it at once) and stops announcing */
  leave(opts?: AbortOptions): Promise<void>
  stats(): RealmStats
}
