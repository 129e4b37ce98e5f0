/**
 * event-delivery: deliveries per second (events x subscribers) through the
 * broadcaster with 10 subscribers, for the bare chain (`[recovery()]`), `defaultChain()` and
 * `productionChain()`, against Node's own `EventTarget` (and libp2p's `TypedEventEmitter`,
 * which the libp2p event bus uses) dispatching to 10 listeners, in the same run.
 *
 * Every case publishes the same kind of event with a fresh detail object, to 10 distinct
 * handlers that increment a counter. The cases take turns batch by batch (rotating order), so
 * a noisy moment of the machine hits all of them alike. value = median deliveries/s of the
 * recovery-only chain over the timed batches.
 */

import { cleanupBroadcaster, defaultChain, productionChain, recovery } from '@holdfast/cleanup-broadcaster'
import { createNode, stopAll } from '@holdfast/test-utils'
import { TypedEventEmitter } from 'main-event'
import { benchmark, collectGarbage, named, round, roundAll, summarize } from '../harness.ts'
import { result } from '../result.ts'
import type { CleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import type { Libp2p, PeerId } from '@libp2p/interface'

const SUBSCRIBERS = 10
/** events per timed batch: ~10 ms for the fastest case on a 2-core EPYC, well above the timer's resolution */
const EVENTS_PER_BATCH = 50_000

interface Case {
  name: string
  /** one of the two targets, or a baseline / extra */
  role: 'value' | 'target' | 'baseline' | 'comparison' | 'extra'
  chain?: string
  /** publishes `events` events, returns nothing; handlers count into `counter` */
  batch(events: number): void
  delivered(): number
}

export const eventDelivery = benchmark({
  name: 'event-delivery',
  description: 'broadcaster deliveries/s with 10 subscribers, recovery only / defaultChain / productionChain, vs EventTarget',
  sizes: { warmupBatches: [20, 50], batches: [60, 300] },
  async run (ctx, { warmupBatches, batches }) {
    const node = await createNode({
      services: {
        recoveryOnly: cleanupBroadcaster({ middleware: [recovery()] }),
        defaultChain: cleanupBroadcaster({ middleware: defaultChain() }),
        productionChain: cleanupBroadcaster({ middleware: productionChain() })
      }
    }) as unknown as Libp2p<{ recoveryOnly: CleanupBroadcaster, defaultChain: CleanupBroadcaster, productionChain: CleanupBroadcaster }>

    try {
      const peer = node.peerId
      const cases: Case[] = [
        broadcasterCase('recovery-only', 'value', '[recovery()]', node.services.recoveryOnly, peer),
        broadcasterCase('defaultChain', 'target', 'defaultChain()', node.services.defaultChain, peer),
        broadcasterCase('productionChain', 'extra', 'productionChain()', node.services.productionChain, peer),
        eventTargetCase('EventTarget', 'baseline', new EventTarget(), peer),
        eventTargetCase('main-event TypedEventEmitter', 'comparison', new TypedEventEmitter(), peer)
      ]

      ctx.log(`${cases.length} cases x (${warmupBatches} warm-up + ${batches} timed batches of ${EVENTS_PER_BATCH} events x ${SUBSCRIBERS} subscribers)`)
      const rates = new Map<Case, number[]>(cases.map(c => [c, []]))
      collectGarbage()
      for (let i = 0; i < warmupBatches + batches; i++) {
        for (let j = 0; j < cases.length; j++) {
          const c = cases[(i + j) % cases.length]
          const start = performance.now()
          c.batch(EVENTS_PER_BATCH)
          const ms = performance.now() - start
          if (i >= warmupBatches) {
            rates.get(c)?.push(EVENTS_PER_BATCH * SUBSCRIBERS / (ms / 1000))
          }
        }
      }

      const expected = (warmupBatches + batches) * EVENTS_PER_BATCH * SUBSCRIBERS
      const results = cases.map(c => {
        const s = summarize(rates.get(c) ?? [])
        // deliveries/s: the slow tail is the low percentile, so p5/p1 are reported beside the median
        const sorted = [...(rates.get(c) ?? [])].sort((x, y) => x - y)
        return {
          name: c.name,
          role: c.role,
          ...(c.chain === undefined ? {} : { chain: c.chain }),
          unit: 'deliveries/s',
          median: round(s.p50),
          ...roundAll({ p5: sorted[Math.floor(sorted.length * 0.05)], p1: sorted[Math.floor(sorted.length * 0.01)], min: s.min, max: s.max }),
          nsPerDelivery: round(1e9 / s.p50, 3),
          batches: s.samples,
          allDelivered: c.delivered() === expected
        }
      })
      const median = (name: string): number => named(results, name).median

      return result(ctx, {
        unit: 'deliveries/s',
        value: median('recovery-only'),
        statistic: 'median',
        baseline: { name: 'EventTarget', value: median('EventTarget'), statistic: 'median', measured: true },
        targets: [
          { metric: 'recovery-only', actual: median('recovery-only'), atLeast: 5_000_000 },
          { metric: 'defaultChain', actual: median('defaultChain'), atLeast: 1_000_000 }
        ],
        checks: { 'every delivery counted': results.every(r => r.allDelivered) },
        samples: named(results, 'recovery-only').batches,
        extra: {
          subscribers: SUBSCRIBERS,
          eventsPerBatch: EVENTS_PER_BATCH,
          cases: results.map(r => ({ ...r, ratioToBaseline: round(r.median / median('EventTarget'), 3) })),
          notes: [
            `deliveries = events x ${SUBSCRIBERS} subscribers; each sample is one batch of ${EVENTS_PER_BATCH} publish() calls timed with performance.now(); the cases take turns batch by batch in a rotating order; the first ${warmupBatches} batches of each case are warm-up and discarded; median over ${batches} batches.`,
            'the broadcasters are services of one started libp2p node (memory transport, no connections); each publishes \'peer:online\' with a fresh { peer } detail; the handlers are 10 distinct closures that increment a counter (distinct because EventTarget ignores a listener added twice).',
            'baseline: Node\'s EventTarget dispatching a new CustomEvent(\'peer:online\', { detail }) to 10 listeners; comparison: main-event\'s TypedEventEmitter.safeDispatchEvent (libp2p\'s event bus). defaultChain() = recovery, logging (disabled: DEBUG unset), metrics (no libp2p metrics: per-type timings only). productionChain() adds timeout(5 s) and validation(coreSchemas).'
          ]
        }
      })
    } finally {
      await stopAll([node])
    }
  }
})

function broadcasterCase (name: string, role: Case['role'], chain: string, broadcaster: CleanupBroadcaster, peer: PeerId): Case {
  const count = { delivered: 0 }
  for (let i = 0; i < SUBSCRIBERS; i++) {
    broadcaster.subscribe('peer:online', () => { count.delivered++ })
  }
  return {
    name,
    role,
    chain,
    batch: (events) => {
      for (let i = 0; i < events; i++) {
        broadcaster.publish('peer:online', { peer })
      }
    },
    delivered: () => count.delivered
  }
}

function eventTargetCase (name: string, role: Case['role'], target: EventTarget | TypedEventEmitter<{ 'peer:online': CustomEvent<{ peer: PeerId }> }>, peer: PeerId): Case {
  const count = { delivered: 0 }
  for (let i = 0; i < SUBSCRIBERS; i++) {
    target.addEventListener('peer:online', () => { count.delivered++ })
  }
  const batch = target instanceof TypedEventEmitter
    ? (events: number) => {
        for (let i = 0; i < events; i++) {
          target.safeDispatchEvent('peer:online', { detail: { peer } })
        }
      }
    : (events: number) => {
        for (let i = 0; i < events; i++) {
          target.dispatchEvent(new CustomEvent('peer:online', { detail: { peer } }))
        }
      }
  return { name, role, batch, delivered: () => count.delivered }
}
