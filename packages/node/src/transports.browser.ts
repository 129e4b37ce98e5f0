import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { isLoopback, isPrivate } from '@libp2p/utils'
import { webRTC, webRTCDirect } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { WebSockets } from '@multiformats/multiaddr-matcher'
import type { ConnectionGater, Transport } from '@libp2p/interface'

/** Browser: everything but TCP (see transports.ts) */
export function transports (): Array<(components: any) => Transport> {
  const rtcConfiguration = { iceServers: [] }
  return [
    webSockets(),
    webRTC({ rtcConfiguration }),
    webRTCDirect({ rtcConfiguration }),
    circuitRelayTransport()
  ]
}

/** A browser cannot listen on a socket: it is reached through its relay reservations and WebRTC */
export function defaultListen (): string[] {
  return ['/webrtc']
}

/**
 * libp2p's browser default refuses to dial insecure WebSockets and private addresses, so a
 * browser could not reach a realm relay on its own machine. This is that default with loopback
 * let through: browsers treat loopback as potentially trustworthy (no mixed-content block), and
 * a relay on 127.0.0.1 is how a browser node is developed and tested. LAN and plain `ws://`
 * addresses elsewhere stay refused (pass `libp2p.connectionGater` to allow them).
 */
export function connectionGater (): ConnectionGater {
  return {
    denyDialMultiaddr: (ma) => !isLoopback(ma) && (WebSockets.matches(ma) || isPrivate(ma))
  }
}
