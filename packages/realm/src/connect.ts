/**
 * Connect by peer ID: the address sources in order (the peer store, the member list, the realm
 * DHT, relays' address books, a relay both sides hold reservations on, the rendezvous), each
 * asked only when the ones before it gave nothing that worked. A connection counts only once it
 * is authenticated.
 *
 * The verdict says what was learned: `NotRealmMemberError` only when the peer was reached and
 * failed to prove membership, `PeerUnreachableError` when no address reached it at all.
 *
 * With the cleanup broadcaster on the node, the whole connect is work bound to the peer: a
 * cleanup of the peer rejects it at once with the broadcaster's `ConnectionClosedError`, and
 * aborts the lookup or dial under way (a direct dial goes through `broadcaster.dial`, a dial
 * through the path selector gets the peer-bound signal).
 */

import { circuitAddr, NotRealmMemberError } from '@holdfast/interface'
import { anySignal } from 'any-signal'
import { setMaxListeners } from 'main-event'
import { AuthFailed } from './auth.ts'
import { PeerUnreachableError } from './errors.ts'
import { provesNonMember, relayAddrs } from './policy.ts'
import type { MemberList } from './member-list.ts'
import type { AddressSource } from './policy.ts'
import type { CleanupBroadcaster, PathSelector } from '@holdfast/interface'
import type { AbortOptions, Connection, Logger, PeerId, PeerStore } from '@libp2p/interface'
import type { AddressManager, ConnectionManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface ConnectorInit {
  peerStore: PeerStore
  addressManager: AddressManager
  connectionManager: ConnectionManager
  log: Logger
  /** the node's cleanup broadcaster and path selector, when it has them (found at start) */
  broadcaster(): CleanupBroadcaster | undefined
  pathSelector(): PathSelector | undefined
  /** what the realm knows of its members: their authenticated connections and announced addresses */
  list: MemberList
  dhtAddrs(peer: PeerId, opts: AbortOptions): Promise<Multiaddr[] | undefined>
  addressBookAddrs(peer: PeerId, opts: AbortOptions): Promise<Multiaddr[]>
  rendezvousAddrs(peer: PeerId, opts: AbortOptions): Promise<Multiaddr[]>
  /** recently failed auth and is denied for now */
  isDenied(peer: PeerId): boolean
  authenticate(connection: Connection, opts: AbortOptions): Promise<void>
}

export class Connector {
  /** where the last successful `connect` found its addresses (tests and diagnostics) */
  lastSource?: AddressSource
  private readonly init: ConnectorInit

  constructor (init: ConnectorInit) {
    this.init = init
  }

  async connect (peer: PeerId, opts: AbortOptions): Promise<Connection> {
    const authenticated = this.init.connectionManager.getConnections(peer).find(c => c.status === 'open' && this.init.list.isAuthenticated(c))
    if (authenticated != null) {
      return authenticated
    }
    if (this.init.isDenied(peer)) {
      throw new NotRealmMemberError('The peer failed realm auth recently and is denied for now')
    }
    const broadcaster = this.init.broadcaster()
    if (broadcaster == null) {
      return this.resolve(peer, opts)
    }
    // the caller's signal is combined here, not handed to track(): with one, track() gives the work
    // a combined signal it releases as soon as a cleanup rejects the work, so the dial under way
    // would never see the abort. The peer's own signal does.
    return broadcaster.track(peer, async peerSignal => {
      const signal = anySignal([peerSignal, opts.signal])
      // every lookup and dial of this connect listens to it
      setMaxListeners(Infinity, signal)
      try {
        return await this.resolve(peer, { ...opts, signal })
      } finally {
        signal.clear()
      }
    })
  }

  /** the sources in order; `opts.signal` aborts everything (with the broadcaster, it is bound to the peer) */
  private async resolve (peer: PeerId, opts: AbortOptions): Promise<Connection> {
    let lastError: Error | undefined
    for (const [source, find] of this.sources(peer, opts)) {
      const addrs = await find()
      if (addrs.length === 0) {
        continue
      }
      let connection: Connection
      try {
        connection = await this.dial(peer, addrs, opts)
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

  /**
   * One dial: the path selector picks relay-first or direct-first from these addresses and
   * upgrades a relayed connection in the background; without it the broadcaster (or libp2p) dials.
   */
  private async dial (peer: PeerId, addrs: Multiaddr[], opts: AbortOptions): Promise<Connection> {
    const pathSelector = this.init.pathSelector()
    if (pathSelector != null) {
      return pathSelector.connect(peer, { addrs, signal: opts.signal })
    }
    const broadcaster = this.init.broadcaster()
    return broadcaster != null
      ? broadcaster.dial(addrs, { signal: opts.signal })
      : this.init.connectionManager.openConnection(addrs, { signal: opts.signal })
  }

  /** the cheap sources first (what this node knows), then the ones that cost a query, the rendezvous last */
  private sources (peer: PeerId, opts: AbortOptions): Array<[AddressSource, () => Promise<Multiaddr[]>]> {
    const id = peer.toString()
    const withPeer = (addrs: Multiaddr[]): Multiaddr[] => addrs.map(a => a.getComponents().at(-1)?.value === id ? a : a.encapsulate(`/p2p/${id}`))
    return [
      ['peer-store', async () => withPeer(await this.init.peerStore.get(peer).then(p => p.addresses.map(a => a.multiaddr), (): Multiaddr[] => []))],
      ['member-list', async () => {
        const member = this.init.list.get(peer)
        return withPeer([...member?.addrs ?? [], ...(member?.relays ?? []).map(relay => circuitAddr(relay))])
      }],
      ['dht', async () => withPeer(await this.init.dhtAddrs(peer, opts) ?? [])],
      ['address-book', async () => withPeer(await this.init.addressBookAddrs(peer, opts))],
      ['shared-relay', async () => {
        return relayAddrs(this.init.addressManager.getAddresses().map(String)).map(relay => circuitAddr(relay, id))
      }],
      ['rendezvous', async () => withPeer(await this.init.rendezvousAddrs(peer, opts))]
    ]
  }
}
