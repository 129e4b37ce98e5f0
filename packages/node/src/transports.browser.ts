import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { webRTC, webRTCDirect } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import type { Transport } from '@libp2p/interface'

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
