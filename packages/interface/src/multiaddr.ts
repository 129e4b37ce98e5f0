/**
 * Circuit-relay addresses (`<relay>/p2p/<relay id>/p2p-circuit[/webrtc][/p2p/<target>]`), read
 * with `@multiformats/multiaddr-matcher` rather than string searches.
 */

import { multiaddr } from '@multiformats/multiaddr'
import { Circuit, WebRTC } from '@multiformats/multiaddr-matcher'
import type { Multiaddr } from '@multiformats/multiaddr'

function toMultiaddr (addr: Multiaddr | string): Multiaddr | undefined {
  try {
    return typeof addr === 'string' ? multiaddr(addr) : addr
  } catch {
    return undefined
  }
}

/**
 * Whether the address reaches its peer through a relay: a circuit address, or WebRTC signalled
 * over one. The matchers know the relay transports used on real networks; a relay reached over
 * a transport they do not list (the in-process memory transport of tests) counts too, as long
 * as the relay's `/p2p/<id>` comes right before `/p2p-circuit`.
 */
export function isCircuitAddr (addr: Multiaddr | string): boolean {
  const ma = toMultiaddr(addr)
  if (ma == null) {
    return false
  }
  if (Circuit.matches(ma) || WebRTC.matches(ma)) {
    return true
  }
  const components = ma.getComponents()
  const at = components.findIndex(c => c.name === 'p2p-circuit')
  return at > 0 && components[at - 1].name === 'p2p'
}

/** The relay's own address in a circuit address (everything before `/p2p-circuit`), or undefined */
export function relayAddrOf (addr: Multiaddr | string): Multiaddr | undefined {
  const ma = toMultiaddr(addr)
  if (ma == null || !isCircuitAddr(ma)) {
    return undefined
  }
  const components = ma.getComponents()
  const at = components.findIndex(c => c.name === 'p2p-circuit')
  return at > 0 ? multiaddr(components.slice(0, at)) : undefined
}

/** The relay's peer ID (as a string) in a circuit address, or undefined */
export function relayPeerOf (addr: Multiaddr | string): string | undefined {
  const relay = relayAddrOf(addr)
  return relay?.getComponents().findLast(c => c.name === 'p2p')?.value
}

/** The circuit address of `target` through `relay` (`<relay>/p2p-circuit[/p2p/<target>]`) */
export function circuitAddr (relay: Multiaddr | string, target?: string | { toString(): string }): Multiaddr {
  const base = toMultiaddr(relay) ?? multiaddr(relay)
  return base.encapsulate(target == null ? '/p2p-circuit' : `/p2p-circuit/p2p/${target.toString()}`)
}
