/**
 * @packageDocumentation
 *
 * A realm is a private group of libp2p peers that share a pre-shared key (PSK). Inside the
 * realm a peer is reached by its peer ID alone; outside it an address is needed.
 *
 * - every new connection runs the realm auth protocol (HMAC over both peer IDs, two fresh nonces and the prover's seq, so a recorded proof is worthless elsewhere); members are tagged and protected `realm-member` and marked ready (`realm-auth`) on the cleanup broadcaster;
 * - the realm is an access boundary: by default (`exclusive`) a peer that is neither a member nor named `infrastructure` is disconnected when its auth fails or times out, and denied for a capped backoff; the realm DHT (`membersOnly`), relay and address book serve members only in every mode;
 * - members announce themselves on a sealed (AES-256-GCM), StrictSign gossipsub topic whose validator rejects anything that does not open, is not the sender's own, is dated too old or too far ahead, or replays an old sequence number (kept past a member's departure, so it cannot come back); members not heard from for `memberTtl` expire;
 * - members rendezvous on any kad-dht under a key derived from the PSK, so plain relays and DHT servers (go-libp2p's among them) can introduce them without listing them;
 * - `realm.connect(peerId)` resolves addresses from the peer store, the member list, the realm DHT, relays' address books, a relay both sides hold reservations on and the rendezvous, and resolves once the peer is authenticated; with the cleanup broadcaster on the node it is work bound to the peer, so a cleanup of the peer rejects it at once (`ConnectionClosedError`) and aborts its dial;
 * - a peer's cleanup on the broadcaster drops what the realm holds for that peer's closed connections; membership, the deny table and the replay memory stay;
 * - `connectNode(node, target)` is the node-level dial: a bare peer ID with no known address is an `AddressRequiredError`.
 *
 * @example
 *
 * ```TypeScript
 * import { createLibp2p } from 'libp2p'
 * import { gossipsub } from '@libp2p/gossipsub'
 * import { identify } from '@libp2p/identify'
 * import { realm } from '@holdfast/realm'
 *
 * const node = await createLibp2p({
 *   // transports, encrypters, muxers...
 *   services: {
 *     identify: identify(),
 *     pubsub: gossipsub(),
 *     realm: realm({ psk: process.env.REALM_PSK! })
 *   }
 * })
 *
 * node.services.realm.addEventListener('member:joined', ({ detail }) => {
 *   console.info('member', detail.peer.toString())
 * })
 * const connection = await node.services.realm.connect(memberPeerId)
 * ```
 */

import { RealmService } from './realm.ts'
import type { Clock, Realm } from '@holdfast/interface'
import type { ComponentLogger, ConnectionGater, ContentRouting, Libp2pEvents, Metrics, PeerId, PeerStore, PrivateKey, TypedEventTarget } from '@libp2p/interface'
import type { AddressManager, ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

export type { AuthFailure, Realm, RealmEvents, RealmMember, RealmMemberLeftReason, RealmRejectReason, RealmStats, RejectReason } from '@holdfast/interface'
export { defaults } from './constants.ts'
export { InvalidRealmRecordError, PeerUnreachableError, RealmAccessDeniedError, RealmBudgetError, RealmRejectedError } from './errors.ts'
export { connectNode } from './connect-node.ts'
export type { ConnectNodeOptions } from './connect-node.ts'
export { deriveKeys } from './keys.ts'
export type { RealmKeys } from './keys.ts'
export { createDhtRecord, DHT_NAMESPACE, dhtKey, realmDhtProtocol, realmDhtSelector, realmDhtValidator } from './dht.ts'
export { membersOnly } from './members-only.ts'
export type { MembersOnlyInit } from './members-only.ts'

export interface RealmInit {
  /** the pre-shared key: >= 32 bytes, as a Uint8Array or a hex or base64 string. Never logged or sent */
  psk: Uint8Array | string
  /**
   * A connection to a peer that is neither an authenticated member nor named `infrastructure`
   * must pass realm auth within `authTimeout`; otherwise it is closed, and the peer is denied
   * (dials both ways, relayed connections) for a backoff that doubles from 10 s up to 10 min.
   * `false` keeps such connections, for nodes that also serve public traffic; the member-only
   * resources stay member-only either way.
   *
   * @default true
   */
  exclusive?: boolean
  /**
   * Peers outside the realm that may stay connected without auth (the relays and bootstrap
   * peers the app names): peer IDs, or multiaddrs ending in `/p2p/<id>`. They never pass auth,
   * so they never get a member-only resource, and what they carry for members is sealed.
   *
   * @default []
   */
  infrastructure?: Array<PeerId | Multiaddr | string>
  /**
   * ms, ± 20 % jitter
   *
   * @default 10000
   */
  announceInterval?: number
  /**
   * ms; also how long an announcement stays acceptable after its issue time
   *
   * @default 3 × announceInterval
   */
  memberTtl?: number
  /**
   * ms; also the longest a peer may hold a connection to an exclusive realm without proving membership
   *
   * @default 5000
   */
  authTimeout?: number
  /**
   * ms a member's clock may be ahead of or behind ours when its announcements are dated
   *
   * @default 30000
   */
  clockSkew?: number
  /**
   * bytes, for every realm wire message (1 KiB to 1 MiB)
   *
   * @default 16384
   */
  maxMessageSize?: number
  /**
   * NAT type announced to members (informational)
   *
   * @default 'unknown'
   */
  natType?: string
  /**
   * when this node runs a circuit-relay server, only authenticated members get a reservation,
   * and circuits are opened only between two authenticated members
   *
   * @default true
   */
  relayMembersOnly?: boolean
  /**
   * publish and look up realm DHT records when kad-dht is present (configure it with
   * `realmDhtValidator` / `realmDhtSelector` under `DHT_NAMESPACE`, and wrap it in `membersOnly`)
   *
   * @default true
   */
  dht?: boolean
  /**
   * rendezvous with the other members on every kad-dht of the node (a public one, or a plain DHT
   * server the app names as infrastructure): provide, and look up providers of, a key derived
   * from the PSK that rotates every 6 hours, then connect to the providers and authenticate them
   *
   * @default true
   */
  rendezvous?: boolean
  /**
   * answer the address-book protocol when this node runs a circuit-relay server
   *
   * @default true
   */
  serveAddressBook?: boolean
  /**
   * the clock of every realm timer, and of announcement dates: wall-clock milliseconds
   *
   * @default systemClock
   */
  clock?: Clock
}

export interface RealmComponents {
  peerId: PeerId
  privateKey: PrivateKey
  logger: ComponentLogger
  registrar: Registrar
  connectionManager: ConnectionManager
  addressManager: AddressManager
  peerStore: PeerStore
  events: TypedEventTarget<Libp2pEvents>
  connectionGater: ConnectionGater
  contentRouting: ContentRouting
  metrics?: Metrics
}

export function realm (init: RealmInit): (components: RealmComponents) => Realm {
  return (components) => new RealmService(components, init)
}
