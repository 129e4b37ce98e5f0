/**
 * per-connection-overhead: heap the watermark connection manager retains
 * per tracked connection, after a full GC, with 1,000 connections.
 *
 * The connections are synthetic (see synthetic-node.ts) and created before the first heap
 * reading, so only the manager's bookkeeping is measured: the heap after GC with the manager
 * started and nothing opened, then after 1,000 `connection:open` events through the real
 * event bus (and the peer-store tag loads settled). Baseline, measured the same way in the same
 * run: the minimum any manager must keep, libp2p's own shape (a map of peer ID string ->
 * array of connections).
 */

import { watermarkConnectionManager } from '@holdfast/connection-manager'
import { benchmark, collectGarbage, median, round, settle } from '../harness.ts'
import { result } from '../result.ts'
import { inertClock, peerIds, syntheticNode } from './synthetic-node.ts'
import type { SyntheticConnection } from './synthetic-node.ts'
import type { WatermarkConnectionManagerService } from '@holdfast/connection-manager'
import type { PeerId } from '@libp2p/interface'

const CONNECTIONS = 1_000

interface Case {
  name: string
  peers: number
  /** tags each peer gets after connecting: one tagPeer and one decaying bump */
  tagged: boolean
}

const CASES: Case[] = [
  { name: 'one-connection-per-peer', peers: 1_000, tagged: false },
  { name: 'two-connections-per-peer', peers: 500, tagged: false },
  { name: 'one-connection-per-peer-tagged', peers: 1_000, tagged: true }
]

async function heapAfterGc (): Promise<number> {
  await settle()
  collectGarbage()
  collectGarbage()
  return process.memoryUsage().heapUsed
}

function connectionsFor (peers: PeerId[], count: number, make: (peer: PeerId) => SyntheticConnection): SyntheticConnection[] {
  return Array.from({ length: count }, (_, i) => make(peers[i % peers.length]))
}

async function managerRound (allPeers: PeerId[], c: Case): Promise<number> {
  const node = syntheticNode()
  const peers = allPeers.slice(0, c.peers)
  const connections = connectionsFor(peers, CONNECTIONS, peer => node.connection(peer, 'inbound', 0))
  const manager = watermarkConnectionManager({ lowWater: 2_000, highWater: 4_000, idleTimeout: 60_000, clock: inertClock })(node.components as any) as WatermarkConnectionManagerService
  await manager.start()
  const tag = manager.registerDecayingTag('seen', 60_000, v => ({ value: v.value - 1, remove: v.value <= 1 }), (v, d) => v.value + d)
  const before = await heapAfterGc()
  for (const connection of connections) {
    node.dispatchOpen(connection)
  }
  if (c.tagged) {
    for (const peer of peers) {
      manager.tagPeer(peer, 'app', 10)
      tag.bump(peer, 5)
    }
  }
  const after = await heapAfterGc()
  if (manager.internalSizes().connections !== CONNECTIONS) {
    throw new Error(`the manager tracks ${manager.internalSizes().connections} connections, expected ${CONNECTIONS}`)
  }
  await manager.stop()
  return (after - before) / CONNECTIONS
}

async function baselineRound (allPeers: PeerId[], c: Case): Promise<number> {
  const node = syntheticNode()
  const peers = allPeers.slice(0, c.peers)
  const connections = connectionsFor(peers, CONNECTIONS, peer => node.connection(peer, 'inbound', 0))
  const map = new Map<string, SyntheticConnection[]>()
  const onOpen = (evt: CustomEvent<unknown>): void => {
    const connection = evt.detail as SyntheticConnection
    const key = connection.remotePeer.toString()
    map.set(key, [...(map.get(key) ?? []), connection])
  }
  node.events.addEventListener('connection:open', onOpen)
  const before = await heapAfterGc()
  for (const connection of connections) {
    node.dispatchOpen(connection)
  }
  const after = await heapAfterGc()
  if ([...map.values()].reduce((n, list) => n + list.length, 0) !== CONNECTIONS) {
    throw new Error('the baseline map lost connections')
  }
  node.events.removeEventListener('connection:open', onOpen)
  return (after - before) / CONNECTIONS
}

export const perConnectionOverhead = benchmark({
  name: 'per-connection-overhead',
  description: 'heap retained per connection by the watermark connection manager after GC, 1,000 connections, vs a bare peer -> connections map',
  sizes: { rounds: [5, 15] },
  async run (ctx, { rounds }) {
    if ((globalThis as { gc?: unknown }).gc == null) {
      throw new Error('per-connection-overhead needs --expose-gc (npm run bench passes it)')
    }
    const peers = await peerIds(CONNECTIONS)
    const results = []
    for (const c of CASES) {
      const holdfast: number[] = []
      const baseline: number[] = []
      for (let i = 0; i < rounds + 1; i++) {
        const h = await managerRound(peers, c)
        const b = await baselineRound(peers, c)
        if (i > 0) { // the first round warms up
          holdfast.push(h)
          baseline.push(b)
        }
      }
      results.push({ name: c.name, peers: c.peers, connections: CONNECTIONS, tagged: c.tagged, bytesPerConnection: round(median(holdfast)), baselineBytesPerConnection: round(median(baseline)), min: round(Math.min(...holdfast)), max: round(Math.max(...holdfast)), rounds: holdfast.length })
      ctx.log(`${c.name}: ${median(holdfast).toFixed(0)} B/connection (bare map ${median(baseline).toFixed(0)} B)`)
    }
    const value = results[0]
    return result(ctx, {
      unit: 'bytes/connection',
      value: value.bytesPerConnection,
      statistic: 'median',
      baseline: { name: 'peer-connections-map', value: value.baselineBytesPerConnection, statistic: 'median', measured: true },
      metrics: { worstCase: Math.max(...results.map(r => r.bytesPerConnection)) },
      targets: [{ metric: 'worstCase', below: 1_024 }],
      samples: value.rounds,
      extra: {
        cases: results,
        notes: [
          `value = median over ${rounds} rounds (one warm-up discarded) of (heapUsed after 1,000 connection:open - heapUsed before) / 1,000, each reading after two forced full GCs (--expose-gc); case one-connection-per-peer. target applies to the worst case.`,
          'synthetic Connection objects (id, remotePeer, direction, status, streams, timeline, close, abort) and real Ed25519 peer IDs are created before the first reading and kept alive by the round, so they are not counted; the connection:open events go through a real main-event TypedEventEmitter (components.events). What is counted: the manager\'s peer entry, its per-connection record, the map slots, and the peer-store tag load it starts per new peer.',
          'tagged: after connecting, every peer gets one tagPeer value and one decaying-tag bump (the tag registered before the first reading).',
          'baseline: a Map<peer ID string, Connection[]> filled by a connection:open listener, the bookkeeping libp2p\'s own connection manager keeps (its PeerMap of connection arrays); measured the same way in the same run.'
        ]
      }
    })
  }
})
