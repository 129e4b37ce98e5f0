import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { tcp } from '@libp2p/tcp'
import { webRTC, webRTCDirect } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import type { ConnectionGater, Transport } from '@libp2p/interface'

/**
 * Node: TCP, WebSockets, WebRTC (through relays), WebRTC-direct and the circuit relay transport.
 * A bundler takes transports.browser.ts instead (package.json `browser` field), so TCP never
 * reaches a browser bundle.
 */
export function transports (): Array<(components: any) => Transport> {
  // no public STUN servers: loopback and LAN need none, and a machine without internet waits on them
  const rtcConfiguration = { iceServers: [] }
  return [
    tcp(),
    webSockets(),
    webRTC({ rtcConfiguration }),
    webRTCDirect({ rtcConfiguration }),
    circuitRelayTransport()
  ]
}

/** Where a Node peer listens when `listen` is not given */
export function defaultListen (loopbackOnly: boolean): string[] {
  const host = loopbackOnly ? '127.0.0.1' : '0.0.0.0'
  return [`/ip4/${host}/tcp/0`, `/ip4/${host}/tcp/0/ws`, '/webrtc']
}

/** Node: libp2p's own default, which lets every address through (transports.browser.ts differs) */
export function connectionGater (): ConnectionGater {
  return {}
}
