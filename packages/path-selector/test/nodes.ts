/**
 * Nodes for the tests of the cleanup backbone and the path choice, on `@holdfast/test-utils`:
 * 127.0.0.1 TCP, a plain relay, and peers that dial through it or hold a reservation on it.
 */

import { isCircuitAddr } from '@holdfast/interface'
import { createNode, stopAndExpectNoLeaks } from '@holdfast/test-utils'
import { hasCircuitAddr } from '@holdfast/test-utils/infrastructure'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { tcp } from '@libp2p/tcp'
import { webRTC } from '@libp2p/webrtc'
import { isRelayedAddr } from '../src/addrs.ts'
import type { Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { ServiceFactoryMap } from 'libp2p'

export interface RelayedNodeOptions<S extends Record<string, unknown>> {
  /** hold a reservation on this relay, so the node is reachable through it */
  behind?: Libp2p<any>
  /** dial WebRTC through a relay (the upgrade) */
  webrtc?: boolean
  services?: ServiceFactoryMap<S>
}

/**
 * A node on 127.0.0.1 TCP that dials through relays. No connection monitor: its pings would
 * abort a connection whose stream the test holds on purpose.
 */
export async function relayedNode<S extends Record<string, unknown>> (opts: RelayedNodeOptions<S> = {}): Promise<Libp2p<S & { identify: unknown, ping: unknown }>> {
  const listen = ['/ip4/127.0.0.1/tcp/0', ...(opts.behind == null ? [] : [`${opts.behind.getMultiaddrs()[0].toString()}/p2p-circuit`])]
  const node = await createNode<S>({
    transport: 'tcp',
    services: opts.services,
    config: {
      addresses: { listen },
      transports: [tcp(), circuitRelayTransport(), ...(opts.webrtc === true ? [webRTC({ rtcConfiguration: { iceServers: [] } })] : [])],
      connectionMonitor: { enabled: false }
    }
  })
  if (opts.behind != null) {
    await hasCircuitAddr(node)
  }
  return node
}

/** The node's addresses through its relay, and its own */
export const relayedAddrsOf = (node: Libp2p<any>): Multiaddr[] => node.getMultiaddrs().filter(isRelayedAddr)
export const directAddrsOf = (node: Libp2p<any>): Multiaddr[] => node.getMultiaddrs().filter(ma => !isCircuitAddr(ma))

/**
 * The nodes the tests of a suite start, in one array: after each test they are stopped, each of
 * `services` of theirs is checked to hold nothing (`internalSizes()` all zero), and the array
 * is emptied.
 */
export function nodesOfEachTest (...services: string[]): Array<Libp2p<any>> {
  const nodes: Array<Libp2p<any>> = []
  afterEach(async () => {
    for (const service of services) {
      await stopAndExpectNoLeaks(nodes, service)
    }
    nodes.length = 0
  })
  return nodes
}
