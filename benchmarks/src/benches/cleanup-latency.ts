/**
 * cleanup-latency: how long 1,000 requests pending on a peer wait once the peer's last
 * connection closes.
 *
 * Two real libp2p nodes (test-utils `createNode`: memory transport, noise, yamux), A with the
 * broadcaster, one connection A -> B, torn down with `connection.abort()` on A's side. Three
 * clocks per round. `abort`: `performance.now()` immediately before
 * `connection.abort(new Error('bench'))`. `closeEvent`: the first `connection:close` listener
 * of A's event bus, added to `node.components.events` before the node starts so it runs before
 * libp2p's connection manager and the broadcaster (node-level `addEventListener` listeners run
 * after all of them, which is too late). `end`: the rejection handler of the last of the 1,000
 * requests.
 *
 * Cases, the same 1,000 requests each. holdfast-track: `broadcaster.track(peerB, work)` whose
 * work never settles on its own (it rejects when its signal aborts); the figure this
 * benchmark measures is `closeEvent -> end`. libp2p-stream-reset (the measured baseline): each
 * request an `lpStream` write + `read()` on its own libp2p stream to B, which never answers:
 * what libp2p gives an app whose request is a stream. libp2p rejects those reads while aborting the muxer, before it
 * dispatches the close event, so the two are compared on `abort -> end`, the one clock that
 * starts at the same moment for both. request-timeout (not measured): an app-level request that
 * is not a stream (a reply matched by id, a pubsub answer...) waits for its own timeout, 30 s
 * without holdfast.
 */

import { yamux } from '@chainsafe/libp2p-yamux'
import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { connect, createNode, onceEvent, stopAll } from '@holdfast/test-utils'
import { lpStream } from '@libp2p/utils'
import { benchmark, collectGarbage, round, roundAll, settle, summarize } from '../harness.ts'
import { result } from '../result.ts'
import type { Summary } from '../harness.ts'
import type { CleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import type { Connection, Libp2p, Stream, TypedEventTarget, Libp2pEvents } from '@libp2p/interface'

/** pending requests per round: the 2 ms target is for 1,000 of them */
const PENDING = 1_000
/** the request timeout without holdfast: what a pending app-level request waits today */
const REQUEST_TIMEOUT_MS = 30_000
const PROTOCOL = '/holdfast-bench/never-answers/1.0.0'
/**
 * yamux allows 1,000 streams per direction by default and identify/ping use a few: raise the
 * limits on both nodes so the stream baseline holds the same 1,000 requests on one connection
 */
const MAX_STREAMS = PENDING + 64
/** a round whose requests are not all rejected by then is a bug, not a slow round */
const HANG_MS = 5_000

type NodeA = Libp2p<{ broadcaster: CleanupBroadcaster }> & { components?: { events?: TypedEventTarget<Libp2pEvents> } }

/** B's side of the stream baseline: the streams it holds without answering */
interface StreamSink {
  held: Stream[]
  onHeld?(): void
}

/** timestamps inside the broadcaster's cleanup of one round */
interface Phases {
  /** `peer:gone` delivered: the broadcaster is about to run the cleanup chain */
  goneAt: number
  /** the first cleanup layer called: every tracked promise has been rejected (not yet observed) */
  layerAt: number
}

interface Round {
  /** abort() called -> the last request rejected */
  abortToEnd: number
  /** abort() called -> the first connection:close listener of A's event bus ran */
  abortToClose: number
  /** connection:close -> the last request rejected (the figure this benchmark measures) */
  closeToEnd: number
  /** performance.now() of the close event and of the last rejection */
  closeAt: number
  endAt: number
  rejected: number
  errorNames: Record<string, number>
  /** holdfast only: connection:close -> peer:gone, peer:gone -> rejection loop done, loop done -> last handler ran */
  phases?: { closeToGone: number, rejectLoop: number, loopToEnd: number }
}

export const cleanupLatency = benchmark({
  name: 'cleanup-latency',
  description: 'libp2p close of a peer\'s last connection -> 1,000 tracked requests rejected (p99 ms), vs libp2p stream reads on the same close',
  sizes: { rounds: [30, 200], warmup: [5, 20], streamRounds: [10, 50], streamWarmup: [2, 5] },
  async run (ctx, { rounds, warmup, streamRounds, streamWarmup }) {
    const muxers = { streamMuxers: [yamux({ maxInboundStreams: MAX_STREAMS, maxOutboundStreams: MAX_STREAMS })] }
    const a = await createNode({ services: { broadcaster: cleanupBroadcaster() }, config: { ...muxers, start: false } }) as unknown as NodeA
    const closeClock = firstCloseListener(a)
    await a.start()
    const b = await createNode({ config: muxers })
    const broadcaster = a.services.broadcaster
    // A no-op layer timestamps the end of the broadcaster's synchronous rejection loop (its
    // layers are called right after it), and a peer:gone subscriber the start of it: see
    // `phases`. It runs after the rejections (step 3 vs step 2), so it costs the figure nothing.
    const phases: Phases = { goneAt: 0, layerAt: 0 }
    broadcaster.onCleanup('bench-noop', 0, () => { phases.layerAt = performance.now() })
    broadcaster.subscribe('peer:gone', () => { phases.goneAt = performance.now() })

    const sink: StreamSink = { held: [] }
    // B reads nothing and answers nothing: every request waits for a reply that never comes
    await b.handle(PROTOCOL, (stream) => {
      sink.held.push(stream)
      sink.onHeld?.()
    }, { maxInboundStreams: MAX_STREAMS })

    try {
      const holdfast: Round[] = []
      const fresh: Round[] = []
      const streams: Round[] = []
      ctx.log(`holdfast-track and holdfast-track-fresh: ${warmup} warm-up + ${rounds} rounds each; libp2p-stream-reset: ${streamWarmup} warm-up + ${streamRounds} rounds (opening ${PENDING} streams takes ~1 s a round); ${PENDING} pending requests each`)
      // the stream rounds are spread among the holdfast rounds, so a noisy moment of the machine hits both
      const stride = Math.max(1, Math.floor((warmup + rounds) / (streamWarmup + streamRounds)))
      let streamRoundsRun = 0
      for (let i = 0; i < warmup + rounds; i++) {
        const h = await holdfastRound(a, b, closeClock, phases, true)
        const f = await holdfastRound(a, b, closeClock, phases, false)
        if (i >= warmup) {
          holdfast.push(h)
          fresh.push(f)
        }
        if (i % stride === 0 && streamRoundsRun < streamWarmup + streamRounds) {
          const s = await streamRound(a, b, closeClock, sink)
          if (++streamRoundsRun > streamWarmup) {
            streams.push(s)
          }
        }
      }
      while (streamRoundsRun < streamWarmup + streamRounds) {
        const s = await streamRound(a, b, closeClock, sink)
        if (++streamRoundsRun > streamWarmup) {
          streams.push(s)
        }
      }

      const leftovers = broadcaster.internalSizes()
      const hAbort = summarize(holdfast.map(r => r.abortToEnd))
      const hClose = summarize(holdfast.map(r => r.closeToEnd))
      const sAbort = summarize(streams.map(r => r.abortToEnd))
      const allRejected = [...holdfast, ...fresh].every(r => r.rejected === PENDING && r.errorNames.ConnectionClosedError === PENDING)

      return result(ctx, {
        unit: 'ms',
        value: round(hClose.p99),
        statistic: 'p99 of libp2p connection:close -> last of 1,000 tracked requests rejected',
        metrics: stats(hClose),
        baseline: {
          name: 'libp2p-stream-reset',
          value: round(sAbort.p99),
          statistic: 'p99 of connection.abort() -> last of 1,000 stream reads rejected',
          measured: true
        },
        ratioOf: { value: hAbort.p99, baseline: sAbort.p99, what: 'abort -> end p99, holdfast-track / libp2p-stream-reset (the same clock for both)' },
        targets: [{ metric: 'p99', below: 2 }],
        checks: { [`all ${PENDING.toLocaleString('en-US')} requests rejected with ConnectionClosedError in every round`]: allRejected },
        samples: hClose.samples,
        extra: {
          pending: PENDING,
          cases: [
            holdfastCase('holdfast-track', 'value: pending requests tenured (full GC before the abort)', holdfast),
            holdfastCase('holdfast-track-fresh', 'extra: no GC before the abort, the requests are still in the young generation', fresh),
            {
              name: 'libp2p-stream-reset',
              role: 'baseline',
              rounds: streams.length,
              ...stats(sAbort),
              closeToEnd: stats(summarize(streams.map(r => r.closeToEnd))),
              abortToClose: stats(summarize(streams.map(r => r.abortToClose))),
              errorNames: mergeNames(streams),
              allRejectedEveryRound: streams.every(r => r.rejected === PENDING)
            }
          ],
          comparisons: [
            {
              name: 'request-timeout',
              value: REQUEST_TIMEOUT_MS,
              unit: 'ms',
              measured: false,
              ratio: round(hClose.p99 / REQUEST_TIMEOUT_MS, 3),
              source: 'without holdfast, a request pending on a dead peer fails only when its own 30 s timeout fires'
            }
          ],
          leftovers,
          notes: [
            `value = p99 over ${hClose.samples} rounds of the figure this benchmark measures: from libp2p's connection:close event for the only A-B connection (first listener on A's components.events, registered before the node started, so it runs before the connection manager and the broadcaster) to the rejection handler of the last of ${PENDING} broadcaster.track(peerB, work) promises; pass needs all ${PENDING} rejected with ConnectionClosedError in every round. Top-level p50..max are this figure; cases[holdfast-track] top-level stats are abort -> end.`,
            'the close is triggered by connection.abort(new Error(\'bench\')) on A\'s side (memory transport, noise, yamux); abortToClose is libp2p\'s own synchronous teardown before it dispatches the event.',
            `baseline = libp2p-stream-reset, measured in this run: the same ${PENDING} requests, each an lpStream write + read() on its own libp2p stream to B (B holds the stream and never answers; yamux limits raised to ${MAX_STREAMS} streams per direction on both nodes so all ${PENDING} fit on one connection). libp2p rejects the stream reads while aborting the muxer, i.e. before it dispatches connection:close, so a close-event clock would hide its work: the baseline value and ratio use abort() -> last rejected for both cases. It is the ratio baseline because every benchmark compares against a baseline measured in the same run; it answers "does holdfast's fail-fast cost more than libp2p's own teardown of the same number of requests".`,
            `comparisons[request-timeout] = ${REQUEST_TIMEOUT_MS} ms, not measured: it is the obvious baseline, what an app-level request that is not a stream (a reply matched by id, a pubsub answer...) waits today without holdfast. Waiting 30 s to show it proves nothing, so it is the configured value.`,
            'cases[holdfast-track].phases splits closeToEnd: closeToGone = connection:close -> the broadcaster\'s peer:gone delivered (libp2p\'s connection manager dispatches peer:disconnect from its own connection:close listener, and the broadcaster starts the cleanup from that), rejectLoop = peer:gone -> the broadcaster\'s synchronous step 2 done (every tracked promise rejected and the peer signal aborted, timed by the no-op layer it calls next), loopToEnd = -> the last rejection handler ran (microtasks).',
            'holdfast-track (the value) forces a full GC (--expose-gc) just before the abort: the 1,000 pending requests and their closures move to V8\'s old space, as they would be after waiting even a few seconds for a dead peer, and no setup garbage is left to collect inside the window. holdfast-track-fresh skips that GC (requests created a few ms before the close, still in the young generation): it is faster, not the realistic case.',
            `every round reconnects A to B, waits for identify, re-creates the ${PENDING} requests before the abort, then waits for the broadcaster's peer:cleaned (holdfast case) and B's peer:disconnect. holdfast-track: ${warmup} warm-up + ${rounds} rounds; libp2p-stream-reset: ${streamWarmup} warm-up + ${streamRounds} rounds (opening ${PENDING} streams costs ~1 s a round), spread among the holdfast rounds. With few rounds p99 is the maximum.`
          ]
        }
      })
    } finally {
      await stopAll([a, b])
    }
  }
})

/** A holdfast case: top-level stats are abort -> end, like the baseline's */
function holdfastCase (name: string, role: string, rounds: Round[]): Record<string, unknown> {
  return {
    name,
    role,
    rounds: rounds.length,
    ...stats(summarize(rounds.map(r => r.abortToEnd))),
    closeToEnd: stats(summarize(rounds.map(r => r.closeToEnd))),
    abortToClose: stats(summarize(rounds.map(r => r.abortToClose))),
    phases: {
      closeToGone: stats(summarize(rounds.map(r => r.phases?.closeToGone ?? Number.NaN))),
      rejectLoop: stats(summarize(rounds.map(r => r.phases?.rejectLoop ?? Number.NaN))),
      loopToEnd: stats(summarize(rounds.map(r => r.phases?.loopToEnd ?? Number.NaN)))
    },
    errorNames: mergeNames(rounds),
    allRejectedEveryRound: rounds.every(r => r.rejected === PENDING && r.errorNames.ConnectionClosedError === PENDING)
  }
}

function stats (s: Summary): Record<string, number> {
  return roundAll({ p50: s.p50, p95: s.p95, p99: s.p99, min: s.min, mean: s.mean, max: s.max })
}

function mergeNames (rounds: Round[]): Record<string, number> {
  const names: Record<string, number> = {}
  for (const r of rounds) {
    for (const [name, count] of Object.entries(r.errorNames)) {
      names[name] = (names[name] ?? 0) + count
    }
  }
  return names
}

interface CloseClock {
  /** arms the clock for the next close; returns a getter of the time it fired (0 = not yet) */
  arm(): () => number
}

/**
 * Time of A's libp2p `connection:close` event, from a listener that runs before libp2p's
 * connection manager and the broadcaster: it must be added to the node's internal event bus
 * before the node starts.
 */
function firstCloseListener (node: NodeA): CloseClock {
  const events = node.components?.events
  if (events == null) {
    throw new Error('node.components.events is missing: cannot listen to connection:close before the broadcaster')
  }
  let at = 0
  let armed = false
  events.addEventListener('connection:close', () => {
    if (armed) {
      at = performance.now()
      armed = false
    }
  })
  return {
    arm: () => {
      at = 0
      armed = true
      return () => at
    }
  }
}

/** Never settles on its own: rejects with the signal's reason when the signal aborts */
async function neverAnswered (signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
  })
}

interface Requests {
  onRejected(err: unknown): void
  onResolved(): void
  /** resolves with the time the last request settled */
  done: Promise<number>
  errorNames: Record<string, number>
  rejected(): number
}

function requestCounter (n: number): Requests {
  const { promise, resolve } = Promise.withResolvers<number>()
  const errorNames: Record<string, number> = {}
  let settled = 0
  let rejected = 0
  const finish = (): void => {
    if (++settled === n) {
      resolve(performance.now())
    }
  }
  return {
    onRejected: (err) => {
      rejected++
      const name = (err as Error | undefined)?.name ?? String(err)
      errorNames[name] = (errorNames[name] ?? 0) + 1
      finish()
    },
    onResolved: () => {
      errorNames.resolved = (errorNames.resolved ?? 0) + 1
      finish()
    },
    done: promise,
    errorNames,
    rejected: () => rejected
  }
}

async function withinHangLimit (done: Promise<number>, requests: Requests, what: string): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const hang = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what}: only ${requests.rejected()} of ${PENDING} requests rejected ${HANG_MS} ms after the close`))
    }, HANG_MS)
  })
  try {
    return await Promise.race([done, hang])
  } finally {
    clearTimeout(timer)
  }
}

/** Connects A to B and waits until identify has run on A, so no identify stream is in flight at the abort */
async function connectIdle (a: Libp2p<any>, b: Libp2p<any>): Promise<Connection> {
  const identified = onceEvent(a, 'peer:identify', result => result.peerId.equals(b.peerId))
  const connection = await connect(a, b)
  await identified
  return connection
}

/**
 * `tenure`: a full GC just before the abort moves the pending requests to V8's old space, as
 * they would be after waiting a while (and leaves no setup garbage to collect in the window)
 */
async function abortAndTime (a: Libp2p<any>, b: Libp2p<any>, connection: Connection, closeClock: CloseClock, requests: Requests, what: string, tenure: boolean): Promise<Round> {
  const bGone = onceEvent(b, 'peer:disconnect', p => p.equals(a.peerId))
  await settle()
  if (tenure) {
    collectGarbage()
  }
  const closeAt = closeClock.arm()

  const t0 = performance.now()
  connection.abort(new Error('bench'))
  const end = await withinHangLimit(requests.done, requests, what)

  await bGone
  const tClose = closeAt()
  if (tClose === 0) {
    throw new Error(`${what}: no connection:close event on A`)
  }
  return { abortToEnd: end - t0, abortToClose: tClose - t0, closeToEnd: end - tClose, closeAt: tClose, endAt: end, rejected: requests.rejected(), errorNames: requests.errorNames }
}

async function holdfastRound (a: NodeA, b: Libp2p<any>, closeClock: CloseClock, phases: Phases, tenure: boolean): Promise<Round> {
  const broadcaster = a.services.broadcaster
  const connection = await connectIdle(a, b)
  const requests = requestCounter(PENDING)
  for (let i = 0; i < PENDING; i++) {
    broadcaster.track(b.peerId, neverAnswered).then(requests.onResolved, requests.onRejected)
  }
  if (broadcaster.pending(b.peerId) !== PENDING) {
    throw new Error(`expected ${PENDING} pending requests, the broadcaster holds ${broadcaster.pending(b.peerId)}`)
  }
  const cleaned = onceEvent(broadcaster, 'peer:cleaned', d => d.peer.equals(b.peerId))
  phases.goneAt = 0
  phases.layerAt = 0
  const round = await abortAndTime(a, b, connection, closeClock, requests, 'holdfast-track', tenure)
  await cleaned
  round.phases = {
    closeToGone: phases.goneAt - round.closeAt,
    rejectLoop: phases.layerAt - phases.goneAt,
    loopToEnd: round.endAt - phases.layerAt
  }
  return round
}

async function streamRound (a: Libp2p<any>, b: Libp2p<any>, closeClock: CloseClock, sink: StreamSink): Promise<Round> {
  const connection = await connectIdle(a, b)
  sink.held.length = 0
  const allHeld = Promise.withResolvers<void>()
  sink.onHeld = () => {
    if (sink.held.length === PENDING) {
      allHeld.resolve()
    }
  }
  const requests = requestCounter(PENDING)
  const request = new Uint8Array([1, 2, 3, 4])
  await Promise.all(Array.from({ length: PENDING }, async () => {
    const stream = await connection.newStream(PROTOCOL, { maxOutboundStreams: MAX_STREAMS })
    const lp = lpStream(stream)
    await lp.write(request)
    lp.read().then(requests.onResolved, requests.onRejected)
  }))
  // B has every stream: the requests are really pending on the remote
  await allHeld.promise
  sink.onHeld = undefined
  const round = await abortAndTime(a, b, connection, closeClock, requests, 'libp2p-stream-reset', true)
  sink.held.length = 0
  return round
}
