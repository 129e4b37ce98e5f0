import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { onceEvent } from './events.ts'
import type { Connection, Libp2p } from '@libp2p/interface'
import type { Libp2pOptions, ServiceFactoryMap } from 'libp2p'

export type TransportKind = 'memory' | 'tcp'

export interface NodeOptions<S extends Record<string, unknown>> {
  /** @default 'memory' */
  transport?: TransportKind
  /** services added beside identify and ping */
  services?: ServiceFactoryMap<S>
  /** anything else for createLibp2p (connectionManager, connectionMonitor, ...) */
  config?: Partial<Libp2pOptions>
}

let memoryAddresses = 0

/** A started libp2p node with noise, yamux, identify and ping, listening on memory or 127.0.0.1 TCP */
export async function createNode<S extends Record<string, unknown> = Record<string, unknown>> (opts: NodeOptions<S> = {}): Promise<Libp2p<S & { identify: unknown, ping: unknown }>> {
  const transport = opts.transport ?? 'memory'
  const listen = transport === 'memory'
    ? [`/memory/holdfast-test-${process.pid}-${++memoryAddresses}-${Math.random().toString(36).slice(2)}`]
    : ['/ip4/127.0.0.1/tcp/0']
  return createLibp2p({
    addresses: { listen },
    transports: [transport === 'memory' ? memory() : tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...opts.config,
    services: {
      identify: identify(),
      ping: ping(),
      ...opts.services
    } as ServiceFactoryMap<S & { identify: unknown, ping: unknown }>
  })
}

export async function createNodes<S extends Record<string, unknown>> (count: number, opts: NodeOptions<S> = {}): Promise<Array<Libp2p<S & { identify: unknown, ping: unknown }>>> {
  return Promise.all(Array.from({ length: count }, async () => createNode(opts)))
}

/**
 * Dials `b` from `a` and resolves once both ends have the connection open. Pass
 * `{ force: true }` for an extra connection beside an existing one.
 */
export async function connect (a: Libp2p<any>, b: Libp2p<any>, opts: { force?: boolean } = {}): Promise<Connection> {
  const seen = onceEvent(b, 'connection:open', c => c.remotePeer.equals(a.peerId))
  const connection = await a.dial(b.getMultiaddrs(), opts)
  const already = b.getConnections(a.peerId).some(c => c.id === connection.id || c.remotePeer.equals(a.peerId))
  if (!already || opts.force === true) {
    await seen
  }
  return connection
}

/** Closes every connection between `a` and `b` and resolves when both ends saw the disconnect */
export async function disconnect (a: Libp2p<any>, b: Libp2p<any>): Promise<void> {
  const aGone = a.getConnections(b.peerId).length === 0 ? undefined : onceEvent(a, 'peer:disconnect', p => p.equals(b.peerId))
  const bGone = b.getConnections(a.peerId).length === 0 ? undefined : onceEvent(b, 'peer:disconnect', p => p.equals(a.peerId))
  await a.hangUp(b.peerId)
  await Promise.all([aGone, bGone])
}

export async function stopAll (nodes: Array<Libp2p<any> | undefined>): Promise<void> {
  await Promise.all(nodes.map(async node => node?.stop()))
}
