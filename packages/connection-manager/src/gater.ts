/**
 * An app's connection gater with allow and deny lists, in the shape of go-libp2p's
 * `ConnectionGater`: InterceptPeerDial -> `denyDialPeer`, InterceptAddrDial ->
 * `denyDialMultiaddr`, InterceptAccept -> `denyInboundConnection`, InterceptSecured ->
 * `denyInbound/OutboundEncryptedConnection`, plus the relay checkpoints, where a realm hook
 * decides who may hold a reservation on this node.
 */

import { InvalidArgumentError } from '@holdfast/interface'
import { isPeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Answers whether a peer is a member of the app's realm (the realm service provides it) */
export type RealmMembership = (peer: PeerId) => boolean | Promise<boolean>

export interface GaterInit {
  /** peers never denied: not by the deny lists, not by the realm hook */
  allow?: Iterable<PeerId>
  /** peers denied at every checkpoint */
  deny?: Iterable<PeerId>
  /**
   * addresses refused for dials and inbound connections; a prefix matches whole components
   * (`/ip4/10.0.0.1` matches `/ip4/10.0.0.1/tcp/4001`, not `/ip4/10.0.0.10/...`)
   */
  denyMultiaddrs?: Iterable<Multiaddr | string>
  /** when set, only realm members may make a relay reservation on this node */
  isRealmMember?: RealmMembership
}

export interface HoldfastGater extends ConnectionGater {
  denyPeer(peer: PeerId): void
  allowPeer(peer: PeerId): void
  /** removes the peer from both lists */
  forgetPeer(peer: PeerId): void
  /** installs (or, with undefined, removes) the realm hook at run time */
  setRealmHook(isRealmMember: RealmMembership | undefined): void
}

function checkPeer (peer: unknown, argument: string): asserts peer is PeerId {
  if (!isPeerId(peer)) {
    throw new InvalidArgumentError(`${argument} must be a PeerId`, argument)
  }
}

function addressPrefix (addr: Multiaddr | string): string {
  try {
    return multiaddr(addr).toString()
  } catch (err) {
    throw new InvalidArgumentError(`denyMultiaddrs: ${String(addr)} is not a multiaddr (${(err as Error).message})`, 'denyMultiaddrs')
  }
}

/**
 * A `ConnectionGater` to pass as `createLibp2p({ connectionGater })`: denied peers and
 * addresses are refused at every checkpoint, allowed peers never are, and the lists change at
 * run time. It is the node's own gater: the manager's per-direction limits (and other holdfast
 * gates) are chained after it, not into it.
 */
export function createGater (init: GaterInit = {}): HoldfastGater {
  const allowed = new Set<string>()
  const denied = new Set<string>()
  for (const peer of init.allow ?? []) {
    checkPeer(peer, 'allow')
    allowed.add(peer.toString())
  }
  for (const peer of init.deny ?? []) {
    checkPeer(peer, 'deny')
    denied.add(peer.toString())
  }
  const deniedAddrs = [...(init.denyMultiaddrs ?? [])].map(addressPrefix)
  if (init.isRealmMember != null && typeof init.isRealmMember !== 'function') {
    throw new InvalidArgumentError('isRealmMember must be a function', 'isRealmMember')
  }
  let isRealmMember = init.isRealmMember

  const isAllowed = (peer: PeerId): boolean => allowed.has(peer.toString())
  const isDenied = (peer: PeerId): boolean => !isAllowed(peer) && denied.has(peer.toString())
  const addrDenied = (addr: Multiaddr): boolean => {
    if (deniedAddrs.length === 0) {
      return false
    }
    const peer = addr.getComponents().findLast(c => c.name === 'p2p')?.value
    if (peer != null && allowed.has(peer)) {
      return false
    }
    const text = addr.toString()
    return deniedAddrs.some(prefix => text === prefix || text.startsWith(`${prefix}/`))
  }

  return {
    denyDialPeer: (peer: PeerId) => isDenied(peer),
    denyDialMultiaddr: (addr: Multiaddr) => addrDenied(addr),
    denyInboundConnection: (maConn: MultiaddrConnection) => addrDenied(maConn.remoteAddr),
    denyInboundEncryptedConnection: (peer: PeerId) => isDenied(peer),
    denyOutboundEncryptedConnection: (peer: PeerId) => isDenied(peer),
    denyInboundRelayReservation: async (source: PeerId) => {
      if (isAllowed(source)) {
        return false
      }
      if (isDenied(source)) {
        return true
      }
      return isRealmMember != null && !(await isRealmMember(source))
    },
    denyInboundRelayedConnection: (relay: PeerId, remote: PeerId) => isDenied(relay) || isDenied(remote),
    denyOutboundRelayedConnection: (source: PeerId, destination: PeerId) => isDenied(source) || isDenied(destination),

    denyPeer (peer) {
      checkPeer(peer, 'peer')
      allowed.delete(peer.toString())
      denied.add(peer.toString())
    },
    allowPeer (peer) {
      checkPeer(peer, 'peer')
      denied.delete(peer.toString())
      allowed.add(peer.toString())
    },
    forgetPeer (peer) {
      checkPeer(peer, 'peer')
      denied.delete(peer.toString())
      allowed.delete(peer.toString())
    },
    setRealmHook (hook) {
      if (hook != null && typeof hook !== 'function') {
        throw new InvalidArgumentError('the realm hook must be a function', 'isRealmMember')
      }
      isRealmMember = hook
    }
  }
}
