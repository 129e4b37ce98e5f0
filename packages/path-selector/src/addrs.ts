/**
 * Address helpers: which transport a connection runs over, which addresses reach a peer
 * through a relay, and the WebRTC-over-relay addresses the upgrade dials. Circuit addresses
 * are read with the shared helpers of `@holdfast/interface`.
 */

import { circuitAddr, isCircuitAddr, relayAddrOf } from '@holdfast/interface'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** The protocols that name a transport, the most specific first (WebRTC runs over a circuit, WebSockets over TCP) */
const TRANSPORTS = ['webrtc-direct', 'webrtc', 'webtransport', 'p2p-circuit', 'wss', 'ws', 'quic-v1', 'tcp', 'memory']

/** The transport a connection runs over, named after the multiaddr protocol that identifies it */
export function transportOf (ma: Multiaddr): string {
  const names = ma.getComponents().map(c => c.name)
  return TRANSPORTS.find(name => names.includes(name)) ?? 'unknown'
}

/** A WebRTC address: signalled through a relay (`/p2p-circuit/webrtc`) or WebRTC direct */
export function isWebRTCAddr (ma: Multiaddr): boolean {
  return ma.getComponents().some(c => c.name === 'webrtc' || c.name === 'webrtc-direct')
}

/** A plain circuit address: the peer through a relay, without WebRTC on top */
export function isRelayedAddr (ma: Multiaddr): boolean {
  return isCircuitAddr(ma) && !isWebRTCAddr(ma)
}

/** `ma` ending with `/p2p/<peer>`, as libp2p wants every address of one dial to name the same peer */
export function withPeer (ma: Multiaddr, peer: PeerId): Multiaddr {
  const last = ma.getComponents().findLast(c => c.name === 'p2p')
  return last?.value === peer.toString() ? ma : ma.encapsulate(`/p2p/${peer.toString()}`)
}

/**
 * The WebRTC addresses the upgrade dials: the peer's own WebRTC addresses (from the peer
 * store), and one made from the relayed connection's address (`<relay>/p2p-circuit/webrtc/p2p/<peer>`)
 * when the peer did not announce it.
 */
export function upgradeTargets (known: readonly Multiaddr[], relayedAddr: Multiaddr, peer: PeerId): Multiaddr[] {
  const targets = known.filter(isWebRTCAddr).map(ma => withPeer(ma, peer))
  const relay = relayAddrOf(relayedAddr)
  if (relay == null) {
    return targets
  }
  const derived = circuitAddr(relay).encapsulate(`/webrtc/p2p/${peer.toString()}`)
  return targets.some(ma => ma.equals(derived)) ? targets : [...targets, derived]
}
