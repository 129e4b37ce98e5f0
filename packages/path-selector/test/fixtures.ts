import { ECHO_PROTOCOL, circuitAddrs, echo, relayServer, relayedPeer, tcpAddrOf } from '@holdfast/test-utils/infrastructure'
import { pathSelector } from '../src/index.ts'
import type { PathSelector, PathSelectorInit } from '../src/index.ts'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export { circuitAddrs, echo, tcpAddrOf }

export const ECHO = ECHO_PROTOCOL

export type RelayNode = Libp2p<{ identify: unknown, relay: unknown }>
export type PeerNode = Libp2p<{ identify: unknown, ping: unknown, paths: PathSelector }>

/**
 * A circuit relay v2 server on 127.0.0.1, TCP and WebSockets (circuit relay cannot run over
 * `@libp2p/memory`: the address manager wants IP addresses)
 */
export async function createRelay (opts: { privateKey?: PrivateKey, listen?: string[] } = {}): Promise<RelayNode> {
  return relayServer({ privateKey: opts.privateKey, listen: opts.listen ?? ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'] }) as Promise<RelayNode>
}

/**
 * A peer with a reservation on `relay`, the path selector, and an echo handler on `ECHO`.
 * `webrtc`: it listens only on `/p2p-circuit` and `/webrtc`. `direct`: it listens on the relay
 * and on 127.0.0.1 TCP, so a direct path can be dialed on purpose.
 */
export async function createPeer (relay: RelayNode, opts: { reach: 'webrtc' | 'direct', init?: PathSelectorInit, services?: Record<string, (components: any) => unknown> }): Promise<PeerNode> {
  return relayedPeer(relay, { reach: opts.reach, services: { paths: pathSelector(opts.init), ...opts.services } }) as unknown as Promise<PeerNode>
}

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
