/**
 * broadcaster-state (target: state per connected peer < 512 bytes of heap; zero entries left
 * after cleanup): retained heap per connected peer of the cleanup broadcaster, after GC.
 *
 * The broadcaster is the real service class, started on a real event target; the 10,000
 * connections are synthetic `Connection`-shaped objects dispatched as libp2p's
 * `connection:open` / `connection:close` events (10,000 real nodes do not fit a 2-core
 * machine). Their peer IDs are real, and their strings are computed before the first
 * measurement: libp2p caches them on the PeerId for its own maps anyway.
 *
 * Baseline in the same run: the least any per-peer tracking costs, a `Map` from the peer ID
 * string to an array of its connections, fed by the same events.
 */

import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { benchmark, collectGarbage, median, round, settle } from '../harness.ts'
import { result } from '../result.ts'
import type { PeerId, Startable } from '@libp2p/interface'

interface FakeConnection {
  id: string
  remotePeer: PeerId
  direction: 'inbound'
  direct: true
  status: 'open'
  close(): Promise<void>
  abort(): void
}

function heapUsed (): number {
  collectGarbage()
  collectGarbage()
  return process.memoryUsage().heapUsed
}

async function bytesPerPeer (events: EventTarget, connections: FakeConnection[]): Promise<{ perPeer: number, leftAfterClose: number }> {
  await settle()
  const before = heapUsed()
  for (const connection of connections) {
    events.dispatchEvent(new CustomEvent('connection:open', { detail: connection }))
  }
  const open = heapUsed()
  for (const connection of connections) {
    events.dispatchEvent(new CustomEvent('connection:close', { detail: connection }))
  }
  await settle()
  const closed = heapUsed()
  return { perPeer: (open - before) / connections.length, leftAfterClose: (closed - before) / connections.length }
}

export const broadcasterState = benchmark({
  name: 'broadcaster-state',
  description: 'cleanup broadcaster retained heap per connected peer (10,000 synthetic connections), vs a bare Map',
  sizes: { peers: [5_000, 10_000], rounds: [3, 7] },
  async run (ctx, { peers, rounds }) {
    const ids: PeerId[] = []
    for (let i = 0; i < peers; i++) {
      const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      id.toString()
      ids.push(id)
    }
    const connections: FakeConnection[] = ids.map((remotePeer, i) => ({
      id: `c${i}`, remotePeer, direction: 'inbound', direct: true, status: 'open', close: async () => {}, abort: () => {}
    }))

    const events = new EventTarget()
    const self = ids[0]
    const broadcaster = cleanupBroadcaster()({
      peerId: self,
      events: events as any,
      connectionManager: { getConnections: () => [] } as any,
      logger: defaultLogger()
    }) as ReturnType<ReturnType<typeof cleanupBroadcaster>> & Startable
    await broadcaster.start()

    const bareEvents = new EventTarget()
    const bare = new Map<string, FakeConnection[]>()
    bareEvents.addEventListener('connection:open', (e) => {
      const c = (e as CustomEvent<FakeConnection>).detail
      const key = c.remotePeer.toString()
      bare.set(key, [...(bare.get(key) ?? []), c])
    })
    bareEvents.addEventListener('connection:close', (e) => {
      bare.delete((e as CustomEvent<FakeConnection>).detail.remotePeer.toString())
    })

    const holdfast: number[] = []
    const baseline: number[] = []
    let leftBehind = 0
    ctx.log(`${peers} synthetic connected peers, ${rounds} rounds, each: open all, GC, measure, close all`)
    for (let i = 0; i < rounds; i++) {
      const h = await bytesPerPeer(events, connections)
      holdfast.push(h.perPeer)
      leftBehind = Math.max(leftBehind, broadcaster.internalSizes().peers)
      baseline.push((await bytesPerPeer(bareEvents, connections)).perPeer)
    }
    await broadcaster.stop()

    return result(ctx, {
      unit: 'bytes/peer',
      value: round(median(holdfast), 1),
      statistic: 'median of rounds',
      baseline: { name: 'bare Map<peerId, Connection[]>', value: round(median(baseline), 1), measured: true },
      metrics: { peers, entriesLeftAfterClose: leftBehind },
      targets: [{ metric: 'value', below: 512 }, { metric: 'entriesLeftAfterClose', atMost: 0, unit: 'entries' }],
      samples: rounds,
      extra: {
        rounds: holdfast.map(v => round(v, 1)),
        baselineRounds: baseline.map(v => round(v, 1)),
        notes: [
          'retained heap (process.memoryUsage().heapUsed after two forced GCs) with every peer connected, minus before, divided by the peers; includes the broadcaster\'s peer map entries, per-peer entry, connection records and the connection:state / peer:ready events it published (garbage by then).',
          'synthetic Connection-shaped objects through a real EventTarget and the real service class: 10,000 real libp2p nodes do not fit this machine. Peer ID strings are computed before measuring (libp2p caches them on the PeerId for its own maps).'
        ]
      }
    })
  }
})
