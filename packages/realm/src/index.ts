/**
 * @packageDocumentation
 *
 * A realm is a private group of libp2p peers that share a pre-shared key (PSK). Inside the
 * realm a peer is reached by its peer ID alone; outside it an address is needed.
 *
 * - every new connection runs the realm auth protocol in both directions (HMAC over both peer IDs and two fresh nonces, so a recorded proof is worthless elsewhere); members are tagged and protected `realm-member` and marked ready (`realm-auth`) on the cleanup broadcaster;
 * - members announce themselves on a sealed (AES-256-GCM), StrictSign gossipsub topic whose validator rejects anything that does not open, is not the sender's own or replays an old sequence number; members not heard from for `memberTtl` expire;
 * - `realm.connect(peerId)` resolves addresses from the peer store, the member list, the realm DHT, relays' address books and a relay both sides hold reservations on, and resolves once the peer is authenticated;
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
import type { RealmComponents, RealmInit, Realm } from './realm.ts'

export { connectNode } from './connect-node.ts'
export type { ConnectNodeOptions } from './connect-node.ts'
export type { Realm, RealmComponents, RealmEvents, RealmInit, RealmMember, RealmMemberLeftReason, RealmStats, RejectReason } from './realm.ts'
export type { AddressSource } from './policy.ts'
export { deriveKeys } from './keys.ts'
export { DHT_NAMESPACE, dhtKey, realmDhtSelector, realmDhtValidator } from './dht.ts'
export type { RealmKeys } from './keys.ts'
export * from './constants.ts'

export function realm (init: RealmInit): (components: RealmComponents) => Realm {
  return (components) => new RealmService(components, init)
}
