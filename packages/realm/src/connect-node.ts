import { AddressRequiredError } from '@holdfast/interface'
import { isPeerId } from '@libp2p/interface'
import type { AbortOptions, Connection, Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface ConnectNodeOptions extends AbortOptions {}

/**
 * The node-level connect: outside a realm there is no shared discovery and no
 * shared relay, so a bare peer ID is dialled only when the peer store already has addresses
 * for it (or a connection is open); otherwise `AddressRequiredError`. A multiaddr dials as usual.
 */
export async function connectNode (node: Libp2p, target: PeerId | Multiaddr | Multiaddr[], opts: ConnectNodeOptions = {}): Promise<Connection> {
  if (isPeerId(target)) {
    const open = node.getConnections(target).find(c => c.status === 'open')
    if (open != null) {
      return open
    }
    const known = await node.peerStore.get(target).then(peer => peer.addresses.length, () => 0)
    if (known === 0) {
      throw new AddressRequiredError(`An address is required to reach ${target.toString()}: it is not a realm member`)
    }
  }
  return node.dial(target, opts)
}
