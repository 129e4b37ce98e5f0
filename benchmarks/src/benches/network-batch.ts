/**
 * network-batch: a burst of 50 platform network events must cost exactly
 * one recovery action, started within 5 ms of the settle window closing.
 *
 * Real libp2p nodes (test-utils `createNode`: memory transport, noise, yamux, ping), the
 * supervisor on the system clock with its default processor, connected to one peer, so each
 * `restore` really pings it. A burst is 50 `network-path-changed` events handed to
 * `handle()` back to back (Wi-Fi off, cellular on, off, on...), its last snapshot available on
 * a new transport, so the batch's action is `restore`.
 *
 * value: p99 of (action start - last event of the burst - settle window), in ms. "Action
 * start" is the `network:batch` event, dispatched synchronously right before the processor is
 * called. Baseline, measured in the same run: per-event handling, one action per event with no
 * settle window (what a platform hook calling a recovery routine directly does): the same 50
 * events each awaited through a supervisor with `settleWindow: 0`, so every event runs its own
 * restore.
 */

import { networkSupervisor } from '@holdfast/network-supervisor'
import { connect, createNode, stopAll } from '@holdfast/test-utils'
import { benchmark, round, roundAll, summarize } from '../harness.ts'
import { result } from '../result.ts'
import type { NetworkEvent, NetworkSnapshot } from '@holdfast/interface'
import type { NetworkSupervisor } from '@holdfast/network-supervisor'
import type { Libp2p } from '@libp2p/interface'

const BURST = 50
const SETTLE_WINDOW_MS = 400

type Node = Libp2p<{ network: NetworkSupervisor }>

interface BatchRound {
  /** action start - last event - settle window */
  overhead: number
  actions: number
  answered: number
  /** the restore's own duration */
  work: number
  /** first event -> last answer */
  wall: number
}

interface PerEventRound {
  actions: number
  /** sum of the 50 actions' durations */
  work: number
  wall: number
  /** each event -> its action start (the 0 ms timer) */
  starts: number[]
}

/** 50 snapshots: available/unavailable alternating, the last available on `last` transport */
function burst (sequence: number, last: 'wifi' | 'cellular'): NetworkEvent[] {
  return Array.from({ length: BURST }, (_, i) => {
    const availability = i % 2 === 0 ? 'unavailable' : 'available'
    const snapshot: NetworkSnapshot = {
      sequence: sequence + i,
      availability,
      transport: { wifi: availability === 'available' && last === 'wifi', cellular: availability === 'available' && last === 'cellular', ethernet: false, vpn: false, other: false },
      isExpensive: false,
      isConstrained: false
    }
    return { type: 'network-path-changed', snapshot }
  })
}

export const networkBatch = benchmark({
  name: 'network-batch',
  description: 'burst of 50 network events -> exactly one action; last event -> action start minus the settle window (p99 ms), vs per-event handling',
  sizes: { rounds: [12, 40] },
  async run (ctx, { rounds }) {
    const warmup = 2
    const batched = await createNode({ services: { network: networkSupervisor({ adapters: [], settleWindow: SETTLE_WINDOW_MS }) } }) as unknown as Node
    const perEvent = await createNode({ services: { network: networkSupervisor({ adapters: [], settleWindow: 0 }) } }) as unknown as Node
    const peer = await createNode()
    await connect(batched, peer)
    await connect(perEvent, peer)
    let sequence = 1

    try {
      const batchRounds: BatchRound[] = []
      const perEventRounds: PerEventRound[] = []
      ctx.log(`${warmup} warm-up + ${rounds} rounds of a ${BURST}-event burst, batched (settle ${SETTLE_WINDOW_MS} ms) then per event`)
      for (let i = 0; i < warmup + rounds; i++) {
        const events = burst(sequence, i % 2 === 0 ? 'cellular' : 'wifi')
        sequence += BURST
        const b = await batchRound(batched.services.network, events)
        const p = await perEventRound(perEvent.services.network, burst(sequence, i % 2 === 0 ? 'cellular' : 'wifi'))
        sequence += BURST
        if (i >= warmup) {
          batchRounds.push(b)
          perEventRounds.push(p)
        }
      }

      const overhead = summarize(batchRounds.map(r => r.overhead))
      const batchWork = summarize(batchRounds.map(r => r.work))
      const perEventWork = summarize(perEventRounds.map(r => r.work))
      const metrics = roundAll({ p50: overhead.p50, p95: overhead.p95, p99: overhead.p99, min: overhead.min, max: overhead.max, mean: overhead.mean })
      return result(ctx, {
        unit: 'ms',
        value: metrics.p99,
        statistic: `p99 of (action start - last event - ${SETTLE_WINDOW_MS} ms settle window)`,
        metrics,
        baseline: {
          name: 'per-event',
          value: round(perEventWork.p50),
          statistic: `median over rounds of the summed duration of the ${BURST} actions a burst costs when every event runs its own`,
          actionsPerBurst: perEventRounds[0]?.actions,
          measured: true
        },
        ratioOf: { value: batchWork.p50, baseline: perEventWork.p50, what: 'recovery work per burst (sum of action durations, median): batched / per-event' },
        targets: [{ metric: 'p99', below: 5 }],
        checks: { [`exactly 1 action per ${BURST}-event burst, all ${BURST} callers answered`]: batchRounds.every(r => r.actions === 1 && r.answered === BURST) },
        samples: overhead.samples,
        extra: {
          cases: [
            {
              name: 'batched',
              role: 'value',
              actionsPerBurst: batchRounds.map(r => r.actions),
              answeredPerBurst: batchRounds.map(r => r.answered),
              work: roundAll({ p50: batchWork.p50, p99: batchWork.p99 }),
              wall: roundAll({ p50: summarize(batchRounds.map(r => r.wall)).p50 })
            },
            {
              name: 'per-event',
              role: 'baseline',
              actionsPerBurst: perEventRounds.map(r => r.actions),
              work: roundAll({ p50: perEventWork.p50, p99: perEventWork.p99 }),
              wall: roundAll({ p50: summarize(perEventRounds.map(r => r.wall)).p50 }),
              eventToActionStart: roundAll({ p50: summarize(perEventRounds.flatMap(r => r.starts)).p50, p99: summarize(perEventRounds.flatMap(r => r.starts)).p99 })
            }
          ],
          notes: [
            `value = p99 over ${overhead.samples} bursts of the time from the last handle() call of a ${BURST}-event burst to the network:batch event (dispatched right before the processor runs), minus the ${SETTLE_WINDOW_MS} ms settle window. The window opens at the first event, so the overhead can be negative by the time the burst itself took (< 1 ms).`,
            `the action is the default processor's restore on a real node connected to one peer (ping it, re-dial relays: none, resume the reconnector: none). pass needs exactly 1 action and ${BURST} answers per burst.`,
            `baseline = per-event handling measured in this run: the same bursts through a supervisor with settleWindow 0, each event awaited before the next, so each runs its own action (offline or restore, ${BURST} actions). ratio compares the recovery work (summed action durations); wall time is in cases[].wall: batching trades ${SETTLE_WINDOW_MS} ms of waiting for one action instead of ${BURST}.`
          ]
        }
      })
    } finally {
      await stopAll([batched, perEvent, peer])
    }
  }
})

interface ActionWatch {
  actions: number
  /** summed duration of the actions */
  work: number
  /** performance.now() of the last network:batch */
  batchAt: number
  stop(): void
}

/** Counts the supervisor's actions and their durations and stamps its network:batch events, until `stop()` */
function watchActions (network: NetworkSupervisor): ActionWatch {
  const onBatch = (): void => { watch.batchAt = performance.now() }
  const onAction = ({ detail }: CustomEvent<{ durationMs: number }>): void => {
    watch.actions++
    watch.work += detail.durationMs
  }
  const watch: ActionWatch = {
    actions: 0,
    work: 0,
    batchAt: 0,
    stop: () => {
      network.removeEventListener('network:batch', onBatch)
      network.removeEventListener('network:action', onAction)
    }
  }
  network.addEventListener('network:batch', onBatch)
  network.addEventListener('network:action', onAction)
  return watch
}

async function batchRound (network: NetworkSupervisor, events: NetworkEvent[]): Promise<BatchRound> {
  const watch = watchActions(network)
  try {
    const first = performance.now()
    const results = events.map(async event => network.handle(event))
    const lastEventAt = performance.now()
    const answered = (await Promise.all(results)).filter(r => r.success).length
    const wall = performance.now() - first
    return { overhead: watch.batchAt - lastEventAt - SETTLE_WINDOW_MS, actions: watch.actions, answered, work: watch.work, wall }
  } finally {
    watch.stop()
  }
}

async function perEventRound (network: NetworkSupervisor, events: NetworkEvent[]): Promise<PerEventRound> {
  const watch = watchActions(network)
  const starts: number[] = []
  try {
    const first = performance.now()
    for (const event of events) {
      const sent = performance.now()
      await network.handle(event)
      starts.push(watch.batchAt - sent)
    }
    return { actions: watch.actions, work: watch.work, wall: performance.now() - first, starts }
  } finally {
    watch.stop()
  }
}
