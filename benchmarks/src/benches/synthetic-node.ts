/**
 * A synthetic libp2p node for the connection-manager benchmarks: a real main-event event bus
 * (the same `TypedEventEmitter` libp2p uses for `components.events`), a peer store that keeps
 * only tags, and plain objects with the `Connection` fields the managers read. Closing one
 * removes it and dispatches `connection:close` on the bus, as libp2p does: after `close()` has
 * returned to its caller (libp2p awaits the muxer's and the socket's close first; here it is one
 * microtask), never inside the call. Building 10,000 real connections would measure noise and
 * yamux, not the managers.
 */

import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import type { Clock } from '@holdfast/interface'
import type { Connection, Libp2pEvents, PeerId, Tag } from '@libp2p/interface'

export interface SyntheticConnection {
  id: string
  remotePeer: PeerId
  direction: 'inbound' | 'outbound'
  status: 'open' | 'closed'
  streams: Array<{ protocol: string }>
  timeline: { open: number }
  close(): Promise<void>
  abort(): void
}

export interface SyntheticNode {
  /** the object handed to a service factory or to libp2p's pruner as `components` */
  components: Record<string, unknown>
  events: TypedEventEmitter<Libp2pEvents>
  open: Set<SyntheticConnection>
  /** the peer store's tags, by peer ID string */
  tags: Map<string, Map<string, Tag>>
  /** creates a connection object without opening it */
  connection(peer: PeerId, direction: 'inbound' | 'outbound', streams: number): SyntheticConnection
  /** adds it and dispatches `connection:open` */
  dispatchOpen(connection: SyntheticConnection): void
  /**
   * `performance.now()` once the synchronous run that made the first `close()` call has ended:
   * a trim that starts its closes in one loop has started every one of them by then, and none
   * has dispatched `connection:close` yet
   */
  closesStartedAt: number | undefined
}

let ids = 0

export function syntheticNode (maxConnections = 300): SyntheticNode {
  const events = new TypedEventEmitter<Libp2pEvents>()
  const open = new Set<SyntheticConnection>()
  const tags = new Map<string, Map<string, Tag>>()
  const peerStore = {
    get: async (peer: PeerId) => ({ id: peer, tags: tags.get(peer.toString()) ?? new Map() }),
    merge: async (peer: PeerId, data: { tags?: Record<string, Tag | undefined> }) => {
      const key = peer.toString()
      const own = tags.get(key) ?? new Map<string, Tag>()
      for (const [name, tag] of Object.entries(data.tags ?? {})) {
        if (tag == null) {
          own.delete(name)
        } else {
          own.set(name, tag)
        }
      }
      tags.set(key, own)
      return { id: peer, tags: own }
    }
  }
  const connectionManager = {
    getConnections: () => [...open] as unknown as Connection[],
    getMaxConnections: () => maxConnections
  }
  let startMarked = false
  const markClosesStarted = (): void => {
    if (!startMarked) {
      startMarked = true
      queueMicrotask(() => { node.closesStartedAt = performance.now() })
    }
  }
  const node: SyntheticNode = {
    closesStartedAt: undefined,
    components: { events, peerStore, connectionManager, connectionGater: {}, logger: defaultLogger() },
    events,
    open,
    tags,
    connection (peer, direction, streams) {
      const connection: SyntheticConnection = {
        id: `c${++ids}`,
        remotePeer: peer,
        direction,
        status: 'open',
        streams: Array.from({ length: streams }, () => ({ protocol: '/ipfs/id/1.0.0' })),
        timeline: { open: ids },
        close: async () => {
          markClosesStarted()
          await Promise.resolve()
          shut()
        },
        abort: () => { shut() }
      }
      const shut = (): void => {
        if (connection.status === 'open') {
          connection.status = 'closed'
          open.delete(connection)
          events.safeDispatchEvent('connection:close', { detail: connection as unknown as Connection })
        }
      }
      return connection
    },
    dispatchOpen (connection) {
      open.add(connection)
      events.safeDispatchEvent('connection:open', { detail: connection as unknown as Connection })
    }
  }
  return node
}

export async function peerIds (count: number): Promise<PeerId[]> {
  return Promise.all(Array.from({ length: count }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
}

/** A clock whose timers never fire: automatic trims stay armed, never run */
export const inertClock: Clock = {
  now: () => performance.now(),
  setTimeout: () => ({}),
  clearTimeout: () => {}
}
