/**
 * Infrastructure the realm does not own: a plain kad-dht server and a plain circuit relay (no
 * realm, no PSK), and DHT clients that reach others only through them.
 */

import { connect, createNode, onceEvent } from '@holdfast/test-utils'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { tcp } from '@libp2p/tcp'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { KadDHT, KadDHTInit } from '@libp2p/kad-dht'

export type DhtNode = Libp2p<{ dht: KadDHT }>

/** kad-dht's factory wants the `ping` component, which createNode's typing does not show */
export const kad = (init: KadDHTInit): any => kadDHT({ peerInfoMapper: passthroughMapper, ...init })

/** a plain kad-dht server on the default protocol, not a realm member */
export async function dhtServer (): Promise<DhtNode> {
  return createNode({ transport: 'tcp', services: { dht: kad({ clientMode: false, allowQueryWithZeroPeers: true }) } }) as Promise<DhtNode>
}

/** a plain circuit-relay-v2 server, not a realm member; no limit on relayed connections */
export async function relayServer (): Promise<Libp2p> {
  return createNode({ transport: 'tcp', services: { relay: circuitRelayServer({ reservations: { applyDefaultLimit: false } }) } })
}

/**
 * A DHT client that can dial circuits. Given a relay, it listens only on a reservation there, as
 * a member behind NAT would: the relay is the only way in.
 */
export async function member (relay?: Libp2p, dht = kad({ clientMode: true })): Promise<DhtNode> {
  const listen = relay == null ? ['/ip4/127.0.0.1/tcp/0'] : [`${relay.getMultiaddrs()[0].toString()}/p2p-circuit`]
  return createNode({ transport: 'tcp', services: { dht }, config: { addresses: { listen }, transports: [tcp(), circuitRelayTransport()] } }) as Promise<DhtNode>
}

export async function hasCircuitAddr (node: Libp2p<any>): Promise<void> {
  const has = (): boolean => node.getMultiaddrs().some(ma => ma.toString().includes('/p2p-circuit'))
  if (!has()) {
    await onceEvent(node, 'self:peer:update', has)
  }
}

/** dials the DHT server and resolves once it is in the node's routing table */
export async function joinDht (node: DhtNode, server: DhtNode): Promise<void> {
  const table = (node.services.dht as any).routingTable
  const added = new Promise<void>(resolve => {
    const listener = ({ detail }: CustomEvent<PeerId>): void => {
      if (detail.equals(server.peerId)) {
        table.removeEventListener('peer:add', listener)
        resolve()
      }
    }
    table.addEventListener('peer:add', listener)
  })
  await connect(node, server)
  if ((await table.find(server.peerId)) == null) {
    await added
  }
}
