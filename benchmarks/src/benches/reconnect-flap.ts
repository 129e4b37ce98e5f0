/**
 * reconnect-flap: one watched peer loses its link for 0.5 s, 3 s, 10 s and
 * 60 s, on fake time, with the holdfast reconnector and, in the same run, with libp2p's own
 * keep-alive reconnect: app-visible offline events, dials made, time to recover.
 *
 * holdfast: the real `reconnector()` service on synthetic components (an event bus this
 * script drives with peer:connect / peer:disconnect, a dial hook) and test-utils' fake clock.
 * libp2p: the real `ReconnectQueue` class of the installed libp2p (imported from its dist by
 * file URL, it is not exported), with fake components and @sinonjs/fake-timers installed
 * globally, since p-retry waits with the global setTimeout; libp2p's defaults (5 retries,
 * 1000 ms, factor 2, no jitter) and a peer tagged `keep-alive`.
 *
 * The scripted link: down from t0 to t0 + outage; a dial fails at once while it is down and
 * succeeds once it is up. Two remotes: `passive` (only the local side's dials bring the peer
 * back) and `redials` (the remote dials in as soon as the link is up, as a holdfast peer would).
 */

import { reconnector } from '@holdfast/reconnector'
import { createFakeClock, seededRandom } from '@holdfast/test-utils'
import { withGlobal } from '@sinonjs/fake-timers'
import { TypedEventEmitter } from 'main-event'
import { benchmark } from '../harness.ts'
import { result } from '../result.ts'
import type { Reconnector, ReconnectorComponents } from '@holdfast/reconnector'
import type { Libp2pEvents, PeerId } from '@libp2p/interface'

const OUTAGES_MS = [500, 3_000, 10_000, 60_000]
/** how long after the drop a run is watched: past libp2p's last retry (31 s) and the longest outage */
const HORIZON_MS = 120_000
const REMOTES = ['passive', 'redials'] as const
type Remote = typeof REMOTES[number]

/** what an app sees and what the network pays, for one outage */
interface Outcome {
  implementation: 'holdfast' | 'libp2p-keep-alive'
  remote: Remote
  outageMs: number
  /** holdfast: peer:offline; libp2p: peer:disconnect (its only presence signal) */
  appOfflineEvents: number
  /** libp2p only: peer:reconnect-failure, it gave up */
  gaveUp?: boolean
  dials: number
  /** drop -> connected again; null when not back within the horizon */
  recoverMs: number | null
}

/** The scripted peer: its link, its connection state and the dials made to it */
class FlappingPeer {
  readonly events = new TypedEventEmitter<Libp2pEvents>()
  connected = true
  dials = 0
  recoveredAt?: number
  readonly peer: PeerId
  private readonly now: () => number
  private linkUpAt = 0

  constructor (peer: PeerId, now: () => number) {
    this.peer = peer
    this.now = now
  }

  drop (outageMs: number): void {
    this.linkUpAt = this.now() + outageMs
    this.connected = false
    this.events.safeDispatchEvent('peer:disconnect', { detail: this.peer })
  }

  /** the local side dials */
  async dial (): Promise<void> {
    // libp2p's openConnection reuses an open connection: only a dial of a lost peer is a dial
    if (this.connected) {
      return
    }
    this.dials++
    if (this.now() < this.linkUpAt) {
      throw new Error('link down')
    }
    this.reconnect()
  }

  /** the link is up and the remote dials in */
  remoteDials (): void {
    if (!this.connected) {
      this.reconnect()
    }
  }

  private reconnect (): void {
    this.connected = true
    this.recoveredAt ??= this.now()
    this.events.safeDispatchEvent('peer:connect', { detail: this.peer })
  }
}

const silentLogger = {
  forComponent: () => Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false })
}

/** a peer id is only compared and printed by both implementations: a stand-in is enough */
function fakePeerId (name: string): PeerId {
  return { toString: () => name, equals: (other: unknown) => String(other) === name, type: 'Ed25519' } as unknown as PeerId
}

async function runHoldfast (outageMs: number, remote: Remote): Promise<Outcome> {
  const clock = createFakeClock(0)
  const peer = new FlappingPeer(fakePeerId('remote'), () => clock.now())
  let offline = 0
  const components = {
    // sorts below 'remote': this end is the one that does not yield (the reconnector's crossingDelay)
    peerId: fakePeerId('local'),
    events: peer.events,
    logger: silentLogger,
    connectionManager: { getConnections: () => peer.connected ? [{ remotePeer: peer.peer }] : [] },
    peerStore: { get: async () => ({ tags: new Map() }), merge: async () => {}, all: async () => [] }
  } as unknown as ReconnectorComponents
  const service = reconnector({ clock, random: seededRandom(outageMs), watch: () => true, dial: async () => peer.dial() })(components) as Reconnector & { start(): Promise<void>, stop(): Promise<void> }
  service.addEventListener('peer:offline', () => { offline++ })
  await service.start()
  peer.events.safeDispatchEvent('peer:connect', { detail: peer.peer })
  const droppedAt = clock.now()
  peer.drop(outageMs)
  await driveOutage(peer, outageMs, remote, async ms => clock.tickAsync(ms))
  await service.stop()
  return { implementation: 'holdfast', remote, outageMs, appOfflineEvents: offline, dials: peer.dials, recoverMs: peer.recoveredAt == null ? null : peer.recoveredAt - droppedAt }
}

interface ReconnectQueueLike {
  start(): void
  stop(): void
}
type ReconnectQueueClass = new (components: unknown, init: { retries: number, retryInterval: number, backoffFactor: number }) => ReconnectQueueLike

async function loadReconnectQueue (): Promise<ReconnectQueueClass> {
  const entry = import.meta.resolve('libp2p')
  const module = await import(new URL('./connection-manager/reconnect-queue.js', entry).href) as { ReconnectQueue: ReconnectQueueClass }
  return module.ReconnectQueue
}

async function runLibp2p (ReconnectQueue: ReconnectQueueClass, outageMs: number, remote: Remote): Promise<Outcome> {
  // p-retry sleeps with the global setTimeout: fake it for this run only
  const clock = withGlobal(globalThis).install({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
  try {
    const peer = new FlappingPeer(fakePeerId('remote'), () => clock.now)
    let offline = 0
    let gaveUp = false
    peer.events.addEventListener('peer:disconnect', () => { offline++ })
    peer.events.addEventListener('peer:reconnect-failure', () => { gaveUp = true })
    const queue = new ReconnectQueue({
      events: peer.events,
      logger: silentLogger,
      peerStore: { get: async () => ({ tags: new Map([['keep-alive', { value: 1 }]]) }), merge: async () => {} },
      connectionManager: { openConnection: async () => peer.dial() }
    }, { retries: 5, retryInterval: 1_000, backoffFactor: 2 })
    queue.start()
    const droppedAt = clock.now
    peer.drop(outageMs)
    await driveOutage(peer, outageMs, remote, async ms => { await clock.tickAsync(ms) })
    queue.stop()
    return { implementation: 'libp2p-keep-alive', remote, outageMs, appOfflineEvents: offline, gaveUp, dials: peer.dials, recoverMs: peer.recoveredAt == null ? null : peer.recoveredAt - droppedAt }
  } finally {
    clock.uninstall()
  }
}

/** Runs the outage to the horizon; the redialing remote comes in the moment the link is up */
async function driveOutage (peer: FlappingPeer, outageMs: number, remote: Remote, tick: (ms: number) => Promise<void>): Promise<void> {
  await tick(outageMs)
  if (remote === 'redials') {
    peer.remoteDials()
  }
  await tick(HORIZON_MS - outageMs)
}

export const reconnectFlap = benchmark({
  name: 'reconnect-flap',
  description: 'outages of 0.5/3/10/60 s on fake time: app-visible offline events, dials, time to recover, vs libp2p keep-alive reconnect',
  async run (ctx) {
    const ReconnectQueue = await loadReconnectQueue()
    const outcomes: Outcome[] = []
    for (const remote of REMOTES) {
      for (const outageMs of OUTAGES_MS) {
        outcomes.push(await runHoldfast(outageMs, remote))
        outcomes.push(await runLibp2p(ReconnectQueue, outageMs, remote))
      }
    }
    for (const o of outcomes) {
      ctx.log(`${o.implementation.padEnd(17)} ${o.remote.padEnd(7)} outage ${String(o.outageMs).padStart(6)} ms: offline events ${o.appOfflineEvents}, dials ${o.dials}, recovered ${o.recoverMs == null ? 'no' : `after ${o.recoverMs} ms`}`)
    }
    const holdfast = outcomes.filter(o => o.implementation === 'holdfast')
    const libp2p = outcomes.filter(o => o.implementation !== 'holdfast')
    // the target: outages shorter than the tolerance window (5 s) are invisible to the app
    const shortOutages = (list: Outcome[]): Outcome[] => list.filter(o => o.outageMs < 5_000)
    const value = shortOutages(holdfast).reduce((sum, o) => sum + o.appOfflineEvents, 0)
    const baseline = shortOutages(libp2p).reduce((sum, o) => sum + o.appOfflineEvents, 0)
    const shortDials = shortOutages(holdfast.filter(o => o.remote === 'redials')).reduce((sum, o) => sum + o.dials, 0)
    const total = (list: Outcome[], key: 'dials' | 'appOfflineEvents'): number => list.reduce((sum, o) => sum + o[key], 0)
    return result(ctx, {
      unit: 'offline events',
      value,
      statistic: 'app-visible offline events over the outages shorter than the 5 s tolerance window (0.5 s and 3 s), both remotes',
      baseline: { name: 'libp2p-keep-alive', value: baseline, measured: true },
      metrics: { dialsShortOutagesRedials: shortDials },
      targets: [{ metric: 'value', atMost: 0 }, { metric: 'dialsShortOutagesRedials', atMost: 0, unit: 'dials' }],
      target: '0 app-visible offline events and 0 dials for outages < tolerance window (remote redials)',
      samples: outcomes.length,
      extra: {
        totals: {
          holdfast: { dials: total(holdfast, 'dials'), appOfflineEvents: total(holdfast, 'appOfflineEvents') },
          'libp2p-keep-alive': { dials: total(libp2p, 'dials'), appOfflineEvents: total(libp2p, 'appOfflineEvents') }
        },
        outcomes,
        notes: [
          'Fake time throughout; every number is exact for the script, not a timing measurement, so one run is the sample (quick and full runs are identical).',
          'holdfast = the real reconnector() service with its defaults (window 5 s, hold 30 s, 1 s x2 backoff capped at 60 s, ±20 % jitter from a seeded uniform source so runs repeat, 5 attempts) on synthetic components: the script drives its peer:connect / peer:disconnect and answers its dial hook; test-utils createFakeClock.',
          'libp2p-keep-alive = the real ReconnectQueue class of the installed libp2p (dist/src/connection-manager/reconnect-queue.js, imported by file URL because the package does not export it), with fake components: a peer store whose peer carries a keep-alive tag, a connection manager whose openConnection is the scripted dial; retries 5, retryInterval 1000 ms, backoffFactor 2 (libp2p\'s defaults, no jitter); @sinonjs/fake-timers installed globally for its run only, because p-retry sleeps with the global setTimeout.',
          'dials = dials of a peer that is not connected (libp2p\'s openConnection of a connected peer reuses the connection, so a retry that finds the peer back is not counted).',
          'The link is down for the outage: a dial then fails at once (a real dial into a dead link may instead hang until its timeout); afterwards a dial succeeds. passive = only the local side dials; redials = the remote dials in the moment the link is back. recoverMs = drop -> connected again, null when not back within 120 s.',
          'App-visible offline events: holdfast peer:offline (its stable presence); libp2p has no presence signal of its own, so an app sees every peer:disconnect (counted, one per drop) and, when it gives up, peer:reconnect-failure (gaveUp).',
          'holdfast after giving up (60 s outage: the hold of 30 s expires) no longer dials: with a passive remote it is not back within the horizon, like libp2p after its 6th failed attempt at 31 s; with a redialing remote both are back at 60 s and holdfast tells the app peer:online again.'
        ]
      }
    })
  }
})
