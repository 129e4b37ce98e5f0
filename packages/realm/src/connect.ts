/**
 * Connect by peer ID: the address sources in order (the peer store, the member list, the realm
 * DHT, relays' address books, a relay both sides hold reservations on, the rendezvous), each
 * asked only when the ones before it gave nothing that worked. A connection counts only once it
 * is authenticated.
 *
 * The verdict says what was learned: `NotRealmMemberError` only when the peer was reached and
 * failed to prove membership, `PeerUnreachableError` when no address reached it at all.
 */

import { circuitAddr, NotRealmMemberError } from '@holdfast/interface'
import { AuthFailed } from './auth.ts'
import { PeerUnreachableError } from './errors.ts'
import { provesNonMember, relayAddrs } from './policy.ts'
import type { AddressSource } from './policy.ts'
import type { AbortOptions, Connection, Logger, PeerId, PeerStore } from '@libp2p/interface'
import type { AddressManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface ConnectorInit {
  peerStore: PeerStore
  addressManager: AddressManager
  log: Logger
  /** an open connection that already passed auth */
  authenticatedConnection(peer: PeerId): Connection | undefined
  /** the member's addresses and relays from its latest announcement */
  memberAddrs(peer: PeerId): Multiaddr[]
  dhtAddrs(peer: PeerId, opts: AbortOptions): Promise<Multiaddr[] | undefined>
  addressBookAddrs(peer: PeerId, opts: AbortOptions): Promise<Multiaddr[]>
  rendezvousAddrs(peer: PeerId, opts: AbortOptions): Promise<Multiaddr[]>
  /** recently failed auth and is denied for now */
  isDenied(peer: PeerId): boolean
  /** dials (through the path selector when the node has one) */
  dial(peer: PeerId, addrs: Multiaddr[], opts: AbortOptions): Promise<Connection>
  authenticate(connection: Connection, opts: AbortOptions): Promise<void>
}

export class Connector {
  /** where the last successful `connect` found its addresses (tests and diagnostics) */
  lastSource?: AddressSource
  private readonly init: ConnectorInit

  constructor (init: ConnectorInit) {
    this.init = init
  }

  async connect (peer: PeerId, opts: AbortOptions = {}): Promise<Connection> {
    const authenticated = this.init.authenticatedConnection(peer)
    if (authenticated != null) {
      return authenticated
    }
    if (this.init.isDenied(peer)) {
      throw new NotRealmMemberError('The peer failed realm auth recently and is denied for now')
    }
    let lastError: Error | undefined
    for (const [source, find] of this.sources(peer, opts)) {
      const addrs = await find()
      if (addrs.length === 0) {
        continue
      }
      let connection: Connection
      try {
        connection = await this.init.dial(peer, addrs, opts)
      } catch (err: any) {
        opts.signal?.throwIfAborted()
        this.init.log('connect %p via %s: dial failed: %e', peer, source, err)
        lastError = err
        continue
      }
      try {
        await this.init.authenticate(connection, opts)
        this.lastSource = source
        return connection
      } catch (err: any) {
        opts.signal?.throwIfAborted()
        if (err instanceof AuthFailed && provesNonMember(err.reason)) {
          throw new NotRealmMemberError('The peer was reached and failed to prove realm membership')
        }
        this.init.log('connect %p via %s: auth failed: %e', peer, source, err)
        lastError = err
      }
    }
    throw new PeerUnreachableError(lastError == null ? 'No address of the peer is known' : `No address of the peer worked (last: ${lastError.name})`)
  }

  /** seed 004's order, then the rendezvous on any DHT */
  private sources (peer: PeerId, opts: AbortOptions): Array<[AddressSource, () => Promise<Multiaddr[]>]> {
    const id = peer.toString()
    const withPeer = (addrs: Multiaddr[]): Multiaddr[] => addrs.map(a => a.getComponents().at(-1)?.value === id ? a : a.encapsulate(`/p2p/${id}`))
    return [
      ['peer-store', async () => withPeer(await this.init.peerStore.get(peer).then(p => p.addresses.map(a => a.multiaddr), (): Multiaddr[] => []))],
      ['member-list', async () => withPeer(this.init.memberAddrs(peer))],
      ['dht', async () => withPeer(await this.init.dhtAddrs(peer, opts) ?? [])],
      ['address-book', async () => withPeer(await this.init.addressBookAddrs(peer, opts))],
      ['shared-relay', async () => {
        return relayAddrs(this.init.addressManager.getAddresses().map(String)).map(relay => circuitAddr(relay, id))
      }],
      ['rendezvous', async () => withPeer(await this.init.rendezvousAddrs(peer, opts))]
    ]
  }
}
