/**
 * The address book, `/holdfast/realm/<realmId>/addrbook/1.0.0`: a member that runs a relay
 * answers other members "which circuit addresses does peer X hold here". Non-members are
 * refused before they can send a byte of the request.
 */

import { circuitAddr, isCircuitAddr } from '@holdfast/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { ADDRESS_BOOK_TIMEOUT, MAX_RELAYS } from './constants.ts'
import { RealmAccessDeniedError } from './errors.ts'
import { AddrBookRequest, AddrBookResponse } from './pb/realm.ts'
import type { AbortOptions, Connection, Logger, PeerId, PeerStore, Stream } from '@libp2p/interface'
import type { AddressManager, ConnectionManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

/** what the realm uses of circuit-relay-v2's server */
export interface RelayServer {
  reservations: { has(peer: PeerId): boolean }
}

export interface AddressBookInit {
  realmId: string
  connectionManager: ConnectionManager
  peerStore: PeerStore
  addressManager: AddressManager
  maxMessageSize: number
  log: Logger
  isAuthenticated(connection: Connection): boolean
  /** a request that could not be read or answered */
  malformed(): void
  accessDenied(peer: PeerId, resource: string): void
}

export class AddressBook {
  readonly protocol: string
  private readonly init: AddressBookInit

  constructor (init: AddressBookInit) {
    this.init = init
    this.protocol = `/holdfast/realm/${init.realmId}/addrbook/1.0.0`
  }

  /** asks the authenticated members that serve an address book (a relay) which circuit addresses the peer holds there */
  async ask (peer: PeerId, opts: AbortOptions): Promise<Multiaddr[]> {
    for (const connection of this.init.connectionManager.getConnections()) {
      const book = connection.remotePeer
      if (book.equals(peer) || !this.init.isAuthenticated(connection)) {
        continue
      }
      const protocols = await this.init.peerStore.get(book).then(p => p.protocols, (): string[] => [])
      if (!protocols.includes(this.protocol)) {
        continue
      }
      try {
        const stream = await connection.newStream(this.protocol, { runOnLimitedConnection: true, signal: opts.signal })
        const pb = pbStream(stream, { maxDataLength: this.init.maxMessageSize })
        await pb.write({ peerId: new Uint8Array(peer.toMultihash().bytes) }, AddrBookRequest, opts)
        const response = await pb.read(AddrBookResponse, { ...opts, limits: { addrs: MAX_RELAYS } })
        await stream.close(opts).catch(() => {})
        const addrs = response.addrs.map(bytes => multiaddr(bytes)).filter(a => isCircuitAddr(a))
        if (addrs.length > 0) {
          return addrs
        }
      } catch (err) {
        this.init.log('address book of %p: %e', book, err)
      }
    }
    return []
  }

  /** the relay's side: members only, and only circuit addresses through this relay */
  async answer (stream: Stream, connection: Connection, relay: RelayServer): Promise<void> {
    if (!this.init.isAuthenticated(connection)) {
      this.init.accessDenied(connection.remotePeer, 'address-book')
      stream.abort(new RealmAccessDeniedError())
      return
    }
    try {
      const pb = pbStream(stream, { maxDataLength: this.init.maxMessageSize })
      const request = await pb.read(AddrBookRequest, { signal: AbortSignal.timeout(ADDRESS_BOOK_TIMEOUT) })
      const target = peerIdFromString(uint8ArrayToString(request.peerId, 'base58btc'))
      const addrs = relay.reservations.has(target)
        ? this.init.addressManager.getAddresses().filter(a => !isCircuitAddr(a)).slice(0, MAX_RELAYS).map(a => circuitAddr(a, target).bytes)
        : []
      await pb.write({ addrs }, AddrBookResponse)
      await stream.close().catch(() => {})
    } catch (err: any) {
      this.init.malformed()
      stream.abort(err)
    }
  }
}
