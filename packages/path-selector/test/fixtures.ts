import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { onceEvent } from '@holdfast/test-utils'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { byteStream } from '@libp2p/utils'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'
import { pathSelector } from '../src/index.ts'
import type { PathSelector, PathSelectorInit } from '../src/index.ts'
import type { Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export const ECHO = '/holdfast/test/echo/1.0.0'

export type RelayNode = Libp2p<{ identify: unknown, relay: unknown }>
export type PeerNode = Libp2p<{ identify: unknown, ping: unknown, paths: PathSelector }>

/**
 * A circuit relay v2 server on 127.0.0.1, TCP and WebSockets (circuit relay cannot run over
 * `@libp2p/memory`: the address manager wants IP addresses). `applyDefaultLimit: false`:
 * identify and the heartbeat pings would otherwise eat the default 2 min / 128 KiB budget of
 * each relayed connection.
 */
export async function createRelay (opts: { privateKey?: PrivateKey, listen?: string[] } = {}): Promise<RelayNode> {
  return createLibp2p({
    ...(opts.privateKey == null ? {} : { privateKey: opts.privateKey }),
    addresses: { listen: opts.listen ?? ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'] },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      relay: circuitRelayServer({ reservations: { applyDefaultLimit: false } })
    }
  })
}

export const tcpAddrOf = (node: Libp2p<any>): Multiaddr => {
  const found = node.getMultiaddrs().find(ma => ma.toString().includes('/tcp/') && !ma.toString().includes('/ws') && !ma.toString().includes('/p2p-circuit'))
  if (found == null) {
    throw new Error('no TCP address')
  }
  return found
}

/**
 * A peer with a reservation on `relay` and the path selector. `webrtc`: it listens only on
 * `/p2p-circuit` and `/webrtc` (WebRTC private-to-private through the relay; no STUN servers,
 * there is no internet here). `direct`: it listens on the relay and on 127.0.0.1 TCP, so a
 * direct path can be dialed on purpose.
 */
export async function createPeer (relay: RelayNode, opts: { reach: 'webrtc' | 'direct', init?: PathSelectorInit, services?: Record<string, (components: any) => unknown> }): Promise<PeerNode> {
  const listen = [`${tcpAddrOf(relay).toString()}/p2p-circuit`, opts.reach === 'webrtc' ? '/webrtc' : '/ip4/127.0.0.1/tcp/0']
  const node = await createLibp2p({
    addresses: { listen },
    transports: [tcp(), webSockets(), circuitRelayTransport(), webRTC({ rtcConfiguration: { iceServers: [] } })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      ping: ping(),
      paths: pathSelector(opts.init),
      ...opts.services
    }
  })
  await node.handle(ECHO, echoHandler, { runOnLimitedConnection: true })
  if (circuitAddrs(node).length === 0) {
    await onceEvent(node, 'self:peer:update', () => circuitAddrs(node).length > 0)
  }
  return node as unknown as PeerNode
}

/** Echoes every byte until the remote closes its side */
function echoHandler (stream: Stream): void {
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

/** Writes `text` on a new echo stream and returns what came back */
export async function echo (stream: Stream, text = 'hello holdfast'): Promise<string> {
  const bytes = byteStream(stream)
  const data = new TextEncoder().encode(text)
  await bytes.write(data)
  const back = await bytes.read({ bytes: data.byteLength })
  await bytes.unwrap().close()
  return new TextDecoder().decode(back.subarray())
}

export const circuitAddrs = (node: Libp2p<any>): Multiaddr[] => node.getMultiaddrs().filter(ma => ma.toString().includes('/p2p-circuit') && !ma.toString().includes('/webrtc'))
export const directAddrs = (node: Libp2p<any>): Multiaddr[] => node.getMultiaddrs().filter(ma => !ma.toString().includes('/p2p-circuit'))
export const webrtcAddrs = (node: Libp2p<any>): Multiaddr[] => node.getMultiaddrs().filter(ma => ma.toString().includes('/webrtc'))

/** Resolves with the first event of `type` from the service for `peer` that passes `filter` */
export async function onceServiceEvent<K extends 'path:changed' | 'path:upgraded' | 'path:fallback' | 'relay:reservation-lost' | 'relay:reservation-restored'> (service: PathSelector, type: K, filter: (detail: any) => boolean = () => true): Promise<any> {
  return new Promise(resolve => {
    const listener = (event: CustomEvent): void => {
      if (filter(event.detail)) {
        service.removeEventListener(type, listener as any)
        resolve(event.detail)
      }
    }
    service.addEventListener(type, listener as any)
  })
}

export const forPeer = (peer: PeerId) => (detail: { peer?: PeerId }): boolean => detail.peer?.equals(peer) === true
