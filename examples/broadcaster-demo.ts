/**
 * The cleanup broadcaster on two real libp2p nodes over TCP on 127.0.0.1.
 *
 * Node A asks node B 1,000 questions that B never answers. Without holdfast each request
 * would wait for its own 30 s timeout after B goes away; with the broadcaster they all fail
 * the moment A's last connection to B closes, and A's cleanup layers run top-down.
 *
 * Run from the repository root: `npm run demo`. Exits non-zero if any check fails.
 */

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { cleanupBroadcaster, defaultChain } from '@holdfast/cleanup-broadcaster'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import type { CleanupReport } from '@holdfast/interface'

const PENDING = 1_000
const REQUEST_TIMEOUT_MS = 30_000

const checks: Array<{ what: string, ok: boolean, detail: string }> = []
function check (what: string, ok: boolean, detail: string): void {
  checks.push({ what, ok, detail })
  console.info(`${ok ? '✓' : '✗'} ${what} (${detail})`)
}

async function createPeer (withBroadcaster: boolean) {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ...(withBroadcaster ? { broadcaster: cleanupBroadcaster({ middleware: defaultChain(), readyConditions: ['connected', 'identified'] }) } : {})
    }
  })
}

const started = performance.now()
const a = await createPeer(true)
const b = await createPeer(false)
const broadcaster = (a.services as { broadcaster: ReturnType<ReturnType<typeof cleanupBroadcaster>> }).broadcaster
console.info(`two nodes on ${a.getMultiaddrs()[0]?.toString()} and ${b.getMultiaddrs()[0]?.toString()}`)

try {
  // one subscription sees every connection event
  const seen: string[] = []
  broadcaster.subscribe('*', (event) => { seen.push(event.type) })

  // layers of the app, cleaned top-down when B goes
  const layerOrder: string[] = []
  broadcaster.onCleanup('request-cache', 10, () => { layerOrder.push('request-cache') })
  broadcaster.onCleanup('session', 20, async () => { layerOrder.push('session') })
  broadcaster.onCleanup('transport-pool', 90, () => { layerOrder.push('transport-pool') })

  // readiness instead of a sleep: connected and identified
  const readyStart = performance.now()
  await a.dial(b.getMultiaddrs())
  await broadcaster.whenReady(b.peerId, { timeout: 5_000 })
  check('peer ready (connected + identified) without sleeping', true, `${(performance.now() - readyStart).toFixed(1)} ms`)

  // 1,000 requests bound to B that B will never answer
  const outcomes = Array.from({ length: PENDING }, async () => broadcaster.track(b.peerId, async (signal) => new Promise((_resolve, reject) => {
    signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
  }), { timeout: REQUEST_TIMEOUT_MS }).then(() => 'answered', (err: Error) => err.name))
  check(`${PENDING} requests pending on B`, broadcaster.pending(b.peerId) === PENDING, `pending(B) = ${broadcaster.pending(b.peerId)}`)

  const cleaned = new Promise<CleanupReport>(resolve => {
    broadcaster.subscribe('peer:cleaned', ({ detail }) => { resolve(detail.report) })
  })

  // B goes away
  const closeStart = performance.now()
  let lastRejectedAt = 0
  const timed = outcomes.map(async p => p.finally(() => { lastRejectedAt = performance.now() }))
  await b.stop()
  const names = await Promise.all(timed)
  const latency = lastRejectedAt - closeStart
  const report = await cleaned

  const closedErrors = names.filter(n => n === 'ConnectionClosedError').length
  check(`all ${PENDING} requests failed with ConnectionClosedError`, closedErrors === PENDING, `${closedErrors}/${PENDING}`)
  check('they failed at once, not at their 30 s timeout', latency < 1_000, `last one ${latency.toFixed(2)} ms after B stopped, vs ${REQUEST_TIMEOUT_MS} ms`)
  check('cleanup layers ran top-down', layerOrder.join(',') === 'request-cache,session,transport-pool', layerOrder.join(' → '))
  check('cleanup report', report.pendingRejected === PENDING && report.layers.every(l => l.ok), `pendingRejected ${report.pendingRejected}, ${report.layers.length} layers, ${report.durationMs.toFixed(2)} ms`)
  check('one event stream saw it all', ['connection:state', 'peer:ready', 'peer:gone', 'peer:cleaned'].every(t => seen.includes(t)), [...new Set(seen)].join(', '))
  const sizes = broadcaster.internalSizes()
  check('nothing left behind for B', sizes.peers === 0 && sizes.pending === 0 && sizes.timers === 0 && sizes.listeners === 0, JSON.stringify(sizes))
} finally {
  await Promise.all([a.stop(), b.stop()])
}

const failed = checks.filter(c => !c.ok)
console.info(`\n${checks.length - failed.length}/${checks.length} checks passed in ${(performance.now() - started).toFixed(0)} ms`)
process.exitCode = failed.length === 0 ? 0 : 1
