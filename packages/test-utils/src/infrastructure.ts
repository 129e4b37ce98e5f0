/**
 * Infrastructure a realm does not own, as most relays and DHT servers on real networks are: a
 * plain kad-dht server and a plain circuit relay (no realm, no PSK), on 127.0.0.1 TCP, the
 * peers that reserve on the relay and answer an echo protocol (relay.ts), the waits that go
 * with them, and a kad-dht PUT_VALUE sent by hand, as a peer a DHT must refuse would. Node
 * only (TCP, WebRTC), hence an entry of its own.
 */

import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { kadDHT, passthroughMapper, Record as KadRecord } from '@libp2p/kad-dht'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { webSockets } from '@libp2p/websockets'
import { onceEvent } from './events.ts'
import { connect, createNode } from './nodes.ts'
import type { Connection, Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { KadDHT, KadDHTInit } from '@libp2p/kad-dht'
import type { Libp2pOptions, ServiceFactoryMap } from 'libp2p'

export { ECHO_PROTOCOL, circuitAddrs, echo, hasCircuitAddr, relayedPeer, tcpAddrOf } from './relay.ts'
export type { RelayedPeerOptions } from './relay.ts'

export type DhtNode = Libp2p<{ dht: KadDHT }>

/** kad-dht's factory wants the `ping` component, which createNode's typing does not show */
export const kad = (init: KadDHTInit): any => kadDHT({ peerInfoMapper: passthroughMapper, ...init })

/** a plain kad-dht server on the default protocol (`/ipfs/kad/1.0.0`), loopback addresses kept */
export async function dhtServer (): Promise<DhtNode> {
  return createNode({ transport: 'tcp', services: { dht: kad({ clientMode: false, allowQueryWithZeroPeers: true }) } }) as Promise<DhtNode>
}

export interface RelayServerOptions {
  /** also a plain kad-dht server on the default protocol, as many public nodes are */
  dht?: boolean
  /** a fixed identity, e.g. to bring "the same" relay back on the same port */
  privateKey?: PrivateKey
  /**
   * TCP and WebSocket addresses (the relay can dial and listen on both)
   *
   * @default ['/ip4/127.0.0.1/tcp/0']
   */
  listen?: string[]
  /** services beside the relay (and the DHT), e.g. a realm the relay is a member of */
  services?: ServiceFactoryMap<Record<string, unknown>>
  /** anything else for createLibp2p (connectionManager, ...) */
  config?: Partial<Libp2pOptions>
}

/**
 * A plain circuit-relay-v2 server (no realm, no PSK) on 127.0.0.1. `applyDefaultLimit: false`:
 * identify and pings would otherwise eat the default 2 min / 128 KiB budget of each relayed
 * connection. Its connection monitor is off: a test or benchmark times connections, and the
 * relay's own pings would only add traffic to every reservation.
 */
export async function relayServer (opts: RelayServerOptions = {}): Promise<Libp2p<{ relay: unknown }>> {
  const relay = circuitRelayServer({ reservations: { applyDefaultLimit: false } })
  const dht = opts.dht === true ? { dht: kad({ clientMode: false, allowQueryWithZeroPeers: true }) } : {}
  return createNode({
    transport: 'tcp',
    services: { ...opts.services, ...dht, relay },
    config: {
      ...(opts.privateKey == null ? {} : { privateKey: opts.privateKey }),
      addresses: { listen: opts.listen ?? ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp(), webSockets()],
      connectionMonitor: { enabled: false },
      ...opts.config
    }
  }) as unknown as Promise<Libp2p<{ relay: unknown }>>
}

/** dials the DHT server and resolves once it is in the node's routing table */
export async function joinDht (node: DhtNode, server: Libp2p<any>): Promise<void> {
  const table = (node.services.dht as any).routingTable
  const added = onceEvent(table, 'peer:add', (peer: PeerId) => peer.equals(server.peerId))
  await connect(node, server)
  if ((await table.find(server.peerId)) == null) {
    await added
  }
}

function varint (n: number): number[] {
  const out: number[] = []
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return out
}

/** kad-dht's wire message `{ type: PUT_VALUE (0), key, record }` carrying a libp2p `Record`, encoded by hand: kad-dht does not export its codec */
export function kadPutValue (key: Uint8Array, value: Uint8Array): Uint8Array {
  const record = new KadRecord(key, value, new Date()).serialize()
  const field = (no: number, bytes: Uint8Array): number[] => [...varint((no << 3) | 2), ...varint(bytes.length), ...bytes]
  return Uint8Array.from([0x08, 0x00, ...field(2, key), ...field(3, record)])
}

/** sends one PUT_VALUE on a fresh stream of `protocol`: resolves with the reply, rejects when the stream is refused */
export async function putValue (connection: Connection, protocol: string, key: Uint8Array, value: Uint8Array, timeout: number): Promise<Uint8Array> {
  const stream = await connection.newStream(protocol)
  const lp = lpStream(stream)
  await lp.write(kadPutValue(key, value))
  const reply = await lp.read({ signal: AbortSignal.timeout(timeout) })
  await stream.close()
  return reply.subarray()
}
