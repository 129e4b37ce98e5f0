/**
 * trim: one trim of 10,000 connections (5,000 peers, 2 each, random
 * peer-store tags, 10 % of the peers protected), in both trim modes of the watermark manager,
 * side by side with js-libp2p's own `ConnectionPruner` on the same population in the same run.
 *
 * The pruner is the real class from libp2p's dist (`connection-manager/connection-pruner.js`,
 * not in its package exports, imported by file URL), constructed with the synthetic node's
 * components; it is driven through its own `_maybePruneConnections()`, the method its
 * `connection:open` listener calls. Every round builds a fresh population (same seed), opens
 * it through the event bus, settles, collects garbage, then times one trim.
 */

import { watermarkConnectionManager } from '@holdfast/connection-manager'
import { seededRandom } from '@holdfast/test-utils'
import { benchmark, collectGarbage, roundAll, settle, summarize } from '../harness.ts'
import { result } from '../result.ts'
import { inertClock, peerIds, syntheticNode } from './synthetic-node.ts'
import type { SyntheticNode } from './synthetic-node.ts'
import type { WatermarkConnectionManagerService } from '@holdfast/connection-manager'
import type { PeerId } from '@libp2p/interface'

const PEERS = 5_000
const CONNECTIONS_PER_PEER = 2
const PROTECTED_SHARE = 0.1
const LOW_WATER = 100
/** a batch trim that must rank: the protected peers' connections are far below it, so it chooses about half of the peers by score */
const RANKED_LOW_WATER = 5_000
const HIGH_WATER = 9_990
const HYSTERESIS = 10
const SEED = 0x5eed
const TAG_NAMES = ['gossipsub-topic', 'kad-close', 'kad-peer', 'app']

interface Population {
  node: SyntheticNode
  protectedPeers: PeerId[]
  protectedConnections: number
}

/** 5,000 peers x 2 connections, random direction, 20 % with an identify stream, 0-3 random tags, 10 % protected */
function population (peers: PeerId[], maxConnections: number): Population {
  const random = seededRandom(SEED)
  const node = syntheticNode(maxConnections)
  const protectedPeers: PeerId[] = []
  for (const peer of peers) {
    const tags = new Map<string, { value: number }>()
    const count = Math.floor(random() * 4)
    for (let t = 0; t < count; t++) {
      tags.set(TAG_NAMES[Math.floor(random() * TAG_NAMES.length)], { value: Math.floor(random() * 101) })
    }
    if (random() < PROTECTED_SHARE) {
      protectedPeers.push(peer)
    }
    node.tags.set(peer.toString(), tags)
  }
  return { node, protectedPeers, protectedConnections: protectedPeers.length * CONNECTIONS_PER_PEER }
}

function openAll (pop: Population, peers: PeerId[]): void {
  const random = seededRandom(SEED + 1)
  for (const peer of peers) {
    for (let c = 0; c < CONNECTIONS_PER_PEER; c++) {
      pop.node.dispatchOpen(pop.node.connection(peer, random() < 0.5 ? 'inbound' : 'outbound', random() < 0.2 ? 1 : 0))
    }
  }
}

async function holdfastRound (peers: PeerId[], mode: 'batch' | 'incremental', lowWater = LOW_WATER): Promise<{ ms: number, startedMs: number, decideMs: number, closed: number, after: number, shortfall: number, protectedKept: boolean }> {
  const pop = population(peers, 100_000)
  const manager = watermarkConnectionManager({
    lowWater,
    highWater: HIGH_WATER,
    hysteresis: HYSTERESIS,
    trimMode: mode,
    gracePeriod: 0,
    silencePeriod: 2 ** 31 - 1,
    idleTimeout: Infinity,
    clock: inertClock
  })(pop.node.components as any) as WatermarkConnectionManagerService
  await manager.start()
  await manager.trim() // empty: opens a silence period, so the opens below never start an automatic trim
  for (const peer of pop.protectedPeers) {
    manager.protect(peer, 'realm-member') // also writes the peer-store mirror tag the pruner sees
  }
  openAll(pop, peers)
  await settle() // the manager's peer-store tag loads
  collectGarbage()
  const d0 = performance.now()
  manager.explainTrim() // the decision alone: the same work trim() starts with
  const decideMs = performance.now() - d0
  collectGarbage()
  const t0 = performance.now()
  const report = await manager.trim()
  const ms = performance.now() - t0
  const startedMs = closesStartedMs(pop.node, t0)
  const protectedKept = pop.protectedPeers.every(p => [...pop.node.open].some(c => c.remotePeer.equals(p)))
  await manager.stop()
  return { ms, startedMs, decideMs, closed: report.closedConnections, after: report.after, shortfall: report.shortfall, protectedKept }
}

type PrunerClass = new (components: unknown) => { _maybePruneConnections(): Promise<void> }

async function loadPruner (): Promise<PrunerClass> {
  const url = new URL('./connection-manager/connection-pruner.js', import.meta.resolve('libp2p'))
  const { ConnectionPruner } = await import(url.href) as { ConnectionPruner: PrunerClass }
  return ConnectionPruner
}

async function prunerRound (Pruner: PrunerClass, peers: PeerId[], maxConnections: number): Promise<{ ms: number, startedMs: number, closed: number, after: number, protectedKept: boolean }> {
  const pop = population(peers, maxConnections)
  for (const peer of pop.protectedPeers) {
    pop.node.tags.get(peer.toString())?.set('holdfast-protected', { value: 100 }) // what the manager's mirror writes
  }
  openAll(pop, peers)
  const pruner = new Pruner(pop.node.components)
  const before = pop.node.open.size
  collectGarbage()
  const t0 = performance.now()
  await pruner._maybePruneConnections()
  const ms = performance.now() - t0
  const startedMs = closesStartedMs(pop.node, t0)
  const protectedKept = pop.protectedPeers.every(p => [...pop.node.open].some(c => c.remotePeer.equals(p)))
  return { ms, startedMs, closed: before - pop.node.open.size, after: pop.node.open.size, protectedKept }
}

/** From t0 until the trim had started every close (the synthetic node marks it), or NaN if it closed nothing */
function closesStartedMs (node: SyntheticNode, t0: number): number {
  return node.closesStartedAt === undefined ? Number.NaN : node.closesStartedAt - t0
}

/**
 * The synthetic transport's own cost: the connections a batch trim closes (every connection of
 * the unprotected peers), closed straight from a loop with nobody listening. Every case pays it.
 */
async function closeFloorRound (peers: PeerId[]): Promise<{ ms: number, startedMs: number }> {
  const pop = population(peers, 0)
  openAll(pop, peers)
  const protectedKeys = new Set(pop.protectedPeers.map(p => p.toString()))
  const toClose = [...pop.node.open].filter(c => !protectedKeys.has(c.remotePeer.toString()))
  collectGarbage()
  const t0 = performance.now()
  await Promise.all(toClose.map(async c => c.close()))
  const ms = performance.now() - t0
  return { ms, startedMs: closesStartedMs(pop.node, t0) }
}

function stats (values: number[]): Record<string, number> {
  const s = summarize(values)
  return roundAll({ median: s.p50, p95: s.p95, min: s.min, max: s.max, mean: s.mean })
}

export const trim = benchmark({
  name: 'trim',
  description: 'one trim of 10,000 connections / 5,000 peers (random tags, 10 % protected): batch and incremental modes vs libp2p\'s ConnectionPruner',
  sizes: { warmup: [2, 5], rounds: [8, 30] },
  async run (ctx, { warmup, rounds }) {
    ctx.log(`generating ${PEERS} peer IDs`)
    const peers = await peerIds(PEERS)
    const Pruner = await loadPruner()
    const batch: Array<Awaited<ReturnType<typeof holdfastRound>>> = []
    const incremental: Array<Awaited<ReturnType<typeof holdfastRound>>> = []
    const ranked: Array<Awaited<ReturnType<typeof holdfastRound>>> = []
    const pruner: Array<Awaited<ReturnType<typeof prunerRound>>> = []
    const floor: Array<Awaited<ReturnType<typeof closeFloorRound>>> = []
    // the pruner is given the count the batch trim ends at, so both close the same connections' worth
    const protectedConnections = population(peers, 0).protectedConnections
    for (let i = 0; i < warmup + rounds; i++) {
      // the cases take turns, so a noisy moment hits all of them alike
      const b = await holdfastRound(peers, 'batch')
      const inc = await holdfastRound(peers, 'incremental')
      const r = await holdfastRound(peers, 'batch', RANKED_LOW_WATER)
      const p = await prunerRound(Pruner, peers, protectedConnections)
      const f = await closeFloorRound(peers)
      if (i >= warmup) {
        batch.push(b)
        incremental.push(inc)
        ranked.push(r)
        pruner.push(p)
        floor.push(f)
      }
      ctx.log(`round ${i + 1}/${warmup + rounds}: batch ${b.ms.toFixed(2)} ms (closes started at ${b.startedMs.toFixed(2)}, decide ${b.decideMs.toFixed(2)}), incremental ${inc.ms.toFixed(2)} ms, ranked batch ${r.startedMs.toFixed(2)} ms, libp2p pruner ${p.ms.toFixed(2)} ms (closes started at ${p.startedMs.toFixed(2)}), closes alone ${f.ms.toFixed(2)} ms`)
    }
    const batchStats = stats(batch.map(r => r.ms))
    const batchStarted = stats(batch.map(r => r.startedMs))
    const incrementalStats = stats(incremental.map(r => r.ms))
    const rankedStarted = stats(ranked.map(r => r.startedMs))
    const prunerStats = stats(pruner.map(r => r.ms))
    const prunerStarted = stats(pruner.map(r => r.startedMs))
    const floorStats = stats(floor.map(r => r.ms))

    return result(ctx, {
      unit: 'ms',
      value: batchStarted.median,
      statistic: 'median',
      baseline: { name: 'libp2p-connection-pruner', value: prunerStarted.median, statistic: 'median', measured: true },
      metrics: batchStarted,
      targets: [
        { metric: 'batch.decideAndInitiate.p95', actual: batchStarted.p95, below: 20 },
        { metric: 'incremental.endToEnd.p95', actual: incrementalStats.p95, below: 20 }
      ],
      checks: { 'every protected peer kept': [...batch, ...incremental, ...ranked].every(r => r.protectedKept) },
      samples: batch.length,
      extra: {
        population: { peers: PEERS, connections: PEERS * CONNECTIONS_PER_PEER, protectedPeers: protectedConnections / CONNECTIONS_PER_PEER, lowWater: LOW_WATER, highWater: HIGH_WATER, hysteresis: HYSTERESIS },
        cases: [
          { name: 'holdfast-batch', role: 'value', ...batchStarted, decideAndInitiate: batchStarted, endToEnd: batchStats, decide: stats(batch.map(r => r.decideMs)), closedConnections: batch[0].closed, after: batch[0].after, shortfall: batch[0].shortfall, protectedKept: batch.every(r => r.protectedKept) },
          { name: 'holdfast-incremental', role: 'target', ...incrementalStats, decideAndInitiate: stats(incremental.map(r => r.startedMs)), endToEnd: incrementalStats, decide: stats(incremental.map(r => r.decideMs)), closedConnections: incremental[0].closed, after: incremental[0].after, protectedKept: incremental.every(r => r.protectedKept) },
          { name: 'holdfast-batch-ranked', role: 'reference', ...rankedStarted, decideAndInitiate: rankedStarted, endToEnd: stats(ranked.map(r => r.ms)), decide: stats(ranked.map(r => r.decideMs)), lowWater: RANKED_LOW_WATER, closedConnections: ranked[0].closed, after: ranked[0].after, shortfall: ranked[0].shortfall, protectedKept: ranked.every(r => r.protectedKept) },
          { name: 'libp2p-connection-pruner', role: 'baseline', ...prunerStarted, decideAndInitiate: prunerStarted, endToEnd: prunerStats, maxConnections: protectedConnections, closedConnections: pruner[0].closed, after: pruner[0].after, protectedKept: pruner.every(r => r.protectedKept) },
          { name: 'synthetic-closes-alone', role: 'reference', ...floorStats, decideAndInitiate: stats(floor.map(r => r.startedMs)), endToEnd: floorStats, closedConnections: PEERS * CONNECTIONS_PER_PEER - protectedConnections }
        ],
        notes: [
          `each sample times one trim of a fresh population with performance.now(): ${PEERS} peers x ${CONNECTIONS_PER_PEER} connections (random direction; 20 % carry one identify stream), 0-3 peer-store tags per peer (${TAG_NAMES.join(', ')}) with values 0..100, ${PROTECTED_SHARE * 100} % of the peers protected; the same seeded population in every round and case; ${warmup} warm-up rounds discarded, ${rounds} timed; the cases take turns round by round; a full GC before each timed trim.`,
          'synthetic connections (plain objects with id, remotePeer, direction, status, streams, timeline, close, abort) opened through a real main-event TypedEventEmitter used as components.events; close() returns to its caller first and one microtask later removes the connection and dispatches connection:close (libp2p dispatches it only after awaiting the muxer\'s and the socket\'s close, never inside close()). The peer store is an in-memory tag map (get/merge), cheaper than libp2p\'s datastore-backed one, which favours the pruner (it awaits one peerStore.get per peer inside its timed run; the manager keeps tags from peer:update and an initial get at connect).',
          'two figures per case, both from the same call: decideAndInitiate, from the call until the synchronous run that called the first close() has ended (the synthetic node marks it with a microtask queued at the first close(); both the manager and the pruner start all their closes in one synchronous loop, so every close has been started then and none has been processed yet), and endToEnd, until the call resolved (every close settled and every connection:close processed; for holdfast the report with its real `after`). value, baseline, ratio and the batch target are decideAndInitiate: it is what a trim costs the node\'s event loop before the transport takes over; the rest is one connection:close dispatch per closed connection, which in a real node arrives asynchronously after network I/O. synthetic-closes-alone closes the same 9,064 connections from an array (Promise.all over their close() calls) with nobody listening: the transport\'s own share, which every case pays; its decideAndInitiate is the floor of starting those closes with no decision at all, and its endToEnd, about 20 ms on this machine by itself, is why no end-to-end figure of a batch trim here can meet the target.',
          `holdfast-batch: manager.trim() to lowWater ${LOW_WATER}. The protected peers keep ${protectedConnections} connections, above it, so every unprotected peer must go and the trim ranks none to choose them: one pass over the peers into typed columns (the default score from the peer-store tags), then one pass that reads each unprotected peer's streams (for its exact score) and starts closing its connections, then a heap ranking for the report's closing order; it ends at ${protectedConnections} with the rest as shortfall. holdfast-batch-ranked (reference, no target): the same population trimmed to lowWater ${RANKED_LOW_WATER}, where the trim must choose about half of the peers by score: the heap pops the lowest bound, reads that peer's streams for its exact score, and starts closing it when it comes out first with the exact score. holdfast-incremental: the same manager with trimMode 'incremental', highWater ${HIGH_WATER}, hysteresis ${HYSTERESIS}: one trim to ${HIGH_WATER - HYSTERESIS}, what a single arrival over highWater costs; its target is end to end. cases[].decide times explainTrim() alone on the same population just before (the dry run also builds one candidate with its score parts per closed peer, which trim() does not).`,
          `baseline: libp2p ${'3.x'}'s real ConnectionPruner class (dist/src/connection-manager/connection-pruner.js, imported by file URL since libp2p does not export it), constructed with the synthetic components and run through _maybePruneConnections(), the method its connection:open listener calls, with maxConnections = ${protectedConnections} so it closes as many connections as the batch trim; measured the same two ways as holdfast. It has no notion of protection: protected peers carry the manager's 'holdfast-protected' = 100 peer-store tag, as they do beside the manager. protectedKept says whether every protected peer survived.`
        ]
      }
    })
  }
})
