/**
 * Peers that hold a reservation on a circuit relay (`relayServer` in infrastructure.ts), each
 * answering an echo protocol, so a test or a benchmark can open a stream over any path and see
 * its bytes come back.
 */

import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { tcp } from '@libp2p/tcp'
import { byteStream } from '@libp2p/utils'
import { webSockets } from '@libp2p/websockets'
import { onceEvent } from './events.ts'
import { createNode } from './nodes.ts'
import type { Libp2p, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2pOptions, ServiceFactoryMap } from 'libp2p'

/** the protocol every `relayedPeer` answers by echoing what it reads */
export const ECHO_PROTOCOL = '/holdfast/test/echo/1.0.0'

export interface RelayedPeerOptions<S extends Record<string, unknown>> {
  /**
   * what the peer listens on beside its reservation: `relay` nothing (behind NAT, the relay is
   * the only way in), `webrtc` WebRTC private-to-private through the relay (no STUN servers:
   * there is no internet here), `direct` 127.0.0.1 TCP, so a direct path can be dialled on purpose
   */
  reach: 'relay' | 'webrtc' | 'direct'
  /** services beside identify and ping */
  services?: ServiceFactoryMap<S>
  /** anything else for createLibp2p (connectionManager, ...) */
  config?: Partial<Libp2pOptions>
}

/**
 * A started peer holding a reservation on `relay` (resolves once it has its `/p2p-circuit`
 * address) and answering `ECHO_PROTOCOL`, also over limited (relayed) connections. TCP,
 * WebSockets, circuit relay and WebRTC transports; no connection monitor.
 */
export async function relayedPeer<S extends Record<string, unknown> = Record<string, unknown>> (relay: Libp2p<any>, opts: RelayedPeerOptions<S>): Promise<Libp2p<S & { identify: unknown, ping: unknown }>> {
  const beside = { relay: [], webrtc: ['/webrtc'], direct: ['/ip4/127.0.0.1/tcp/0'] }[opts.reach]
  // loaded here, not at the top: WebRTC's native module takes a while to load, and the other
  // helpers of this entry do not need it
  const { webRTC } = await import('@libp2p/webrtc')
  const node = await createNode({
    transport: 'tcp',
    services: opts.services,
    config: {
      addresses: { listen: [`${tcpAddrOf(relay).toString()}/p2p-circuit`, ...beside] },
      transports: [tcp(), webSockets(), circuitRelayTransport(), webRTC({ rtcConfiguration: { iceServers: [] } })],
      connectionMonitor: { enabled: false },
      ...opts.config
    }
  })
  await node.handle(ECHO_PROTOCOL, echoBack, { runOnLimitedConnection: true })
  await hasCircuitAddr(node)
  return node
}

/** Echoes every byte until the remote closes its side */
function echoBack (stream: Stream): void {
  const bytes = byteStream(stream)
  void (async () => {
    try {
      while (true) {
        const chunk = await bytes.read()
        if (chunk == null) {
          break
        }
        await bytes.write(chunk)
      }
      await bytes.unwrap().close()
    } catch (err) {
      stream.abort(err as Error)
    }
  })()
}

/** Writes `text` on an `ECHO_PROTOCOL` stream, reads the echo, closes the stream and returns what came back */
export async function echo (stream: Stream, text = 'hello holdfast'): Promise<string> {
  const bytes = byteStream(stream)
  const data = new TextEncoder().encode(text)
  await bytes.write(data)
  const back = await bytes.read({ bytes: data.byteLength })
  await bytes.unwrap().close()
  return new TextDecoder().decode(back.subarray())
}

/** the node's plain TCP address (not WebSocket, not relayed) */
export function tcpAddrOf (node: Libp2p<any>): Multiaddr {
  const found = node.getMultiaddrs().find(ma => ma.toString().includes('/tcp/') && !ma.toString().includes('/ws') && !ma.toString().includes('/p2p-circuit'))
  if (found == null) {
    throw new Error('no TCP address')
  }
  return found
}

/** the node's addresses through a relay reservation, WebRTC ones excluded */
export const circuitAddrs = (node: Libp2p<any>): Multiaddr[] => node.getMultiaddrs().filter(ma => ma.toString().includes('/p2p-circuit') && !ma.toString().includes('/webrtc'))

/** resolves once the node holds a reservation (a `/p2p-circuit` address of its own) */
export async function hasCircuitAddr (node: Libp2p<any>): Promise<void> {
  const has = (): boolean => circuitAddrs(node).length > 0
  if (!has()) {
    await onceEvent(node, 'self:peer:update', has)
  }
}
