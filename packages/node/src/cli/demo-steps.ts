/**
 * The seven steps of `holdfast demo`, on real nodes over 127.0.0.1. Each step acts on the cast
 * and returns checks read from the services' own state and events; nothing is reported that
 * was not observed. Every wait is for an event, bounded by the step's signal.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { defaults as connectionManagerDefaults } from '@holdfast/connection-manager'
import { TAGS } from '@holdfast/interface'
import { defaults as reconnectorDefaults } from '@holdfast/reconnector'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { byteStream } from '@libp2p/utils'
import { createLibp2p } from 'libp2p'
import { raceSignal } from 'race-signal'
import { createHoldfastNode } from '../node.ts'
import { connectedAgain, echoOverBest, echoPeer, retried, serveEcho } from './demo-echo.ts'
import { collect, nextEvent } from './demo-waits.ts'
import { formatMs as ms } from './output.ts'
import type { HoldfastRealmNode } from '../node.ts'
import type { HoldfastEvents, NetworkEvent, NetworkEventResult, NetworkSnapshot } from '@holdfast/interface'
import type { Path, PathSelector } from '@holdfast/path-selector'
import type { ConnectionGater, Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface Check {
  name: string
  ok: boolean
  detail: string
}

export interface Step {
  id: string
  title: string
  /**
   * which of its checks tells most, for the summary table
   *
   * @default 0
   */
  evidence?: number
  run(cast: Cast, signal: AbortSignal): Promise<Check[]>
}

/**
 * alice: the peer we watch; bob: a desktop with direct (TCP) addresses; carol: a phone behind a
 * NAT, reachable only through the relay and WebRTC; relay: the realm's relay and bootstrap node.
 */
export interface Cast {
  relay: HoldfastRealmNode
  alice: HoldfastRealmNode
  bob: HoldfastRealmNode
  carol: HoldfastRealmNode
  /** plain libp2p nodes that dial alice for the trim step */
  extras: Libp2p[]
}

/** a protocol whose handler never answers: requests that only their peer's loss can end */
export const SILENT = '/holdfast-demo/silent/1.0.0'
export const EXTRA_PEERS = 8
export const PENDING_REQUESTS = 200
export const REQUEST_TIMEOUT_MS = 30_000
/**
 * "At once": within a tenth of the requests' own timeout. Counted from bob.stop(), so it
 * includes bob's shutdown: ~350 ms on an idle machine, up to 1.5 s with four demos on two cores.
 */
const FAIL_FAST_MS = 3_000
/** alice's watermarks for the trim step: far below her connection count */
const TRIM_LIMITS = { lowWater: 2, highWater: 100, gracePeriod: 0 }

const check = (name: string, ok: boolean, detail: string): Check => ({ name, ok, detail })

async function memberOf (node: HoldfastRealmNode, peer: PeerId, signal: AbortSignal): Promise<void> {
  if (!node.services.realm.isMember(peer)) {
    await nextEvent<HoldfastEvents['member:joined']>(node.services.realm, 'member:joined', d => d.peer.equals(peer), signal)
  }
}

/**
 * carol's NAT, as a gater: out only to the relay; every other peer through it (a circuit, or
 * WebRTC signalled over one). Without it carol dials alice's TCP address from the realm's
 * announcements and the relay-first step has nothing to show.
 */
function natFirewall (relay: Multiaddr): ConnectionGater {
  const relayTransport = relay.toString().split('/p2p/')[0]
  return {
    denyDialMultiaddr: (ma) => {
      const addr = ma.toString()
      return !addr.includes('/p2p-circuit') && !addr.startsWith(relayTransport)
    }
  }
}

export async function createCast (psk: string): Promise<Cast> {
  const relay = await createHoldfastNode({
    realm: { psk },
    relayServer: true,
    preset: 'test',
    listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws']
  })
  const relayAddr = relay.getMultiaddrs()[0]
  const [alice, bob, carol] = await Promise.all([
    createHoldfastNode({ realm: { psk }, relays: [relayAddr], preset: 'test' }),
    createHoldfastNode({ realm: { psk }, relays: [relayAddr], preset: 'test' }),
    // behind a NAT: no listening socket of its own, only its reservation on the relay and WebRTC through it
    createHoldfastNode({ realm: { psk }, relays: [relayAddr], preset: 'test', listen: ['/webrtc'], libp2p: { connectionGater: natFirewall(relayAddr) } })
  ])
  await Promise.all([alice, bob, carol].map(serveEcho))
  return { relay, alice, bob, carol, extras: [] }
}

export async function stopCast (cast: Cast): Promise<void> {
  await Promise.all([cast.relay, cast.alice, cast.bob, cast.carol, ...cast.extras].map(async node => node.stop()))
}

const realmFormation: Step = {
  id: 'realm-formation',
  title: 'realm formation',
  // checks are pushed as each node completes: the last is the slowest
  evidence: 3,
  async run ({ relay, alice, bob, carol }, signal) {
    const nodes = { relay, alice, bob, carol }
    const started = performance.now()
    const joined: Check[] = []
    await Promise.all(Object.entries(nodes).map(async ([name, node]) => {
      const others = Object.entries(nodes).filter(([other]) => other !== name)
      await Promise.all(others.map(async ([, peer]) => memberOf(node, peer.peerId, signal)))
      const members = node.services.realm.members().map(m => m.peerId.toString())
      const all = others.every(([, peer]) => members.includes(peer.peerId.toString()))
      joined.push(check(`${name} lists the other ${others.length} as members`, all, `${members.length} members after ${ms(performance.now() - started)}`))
    }))
    return joined
  }
}

const connectById: Step = {
  id: 'connect-by-id',
  title: 'connect by peer ID',
  async run ({ alice, bob }, signal) {
    const started = performance.now()
    const connection = await alice.services.realm.connect(bob.peerId, { signal })
    const connectMs = performance.now() - started
    const round = await echoPeer(alice, bob.peerId, signal)
    return [
      check('realm.connect(bob\'s peer ID) reaches bob', connection.remotePeer.equals(bob.peerId), `${connection.remoteAddr.toString().split('/p2p/')[0]} in ${ms(connectMs)}`),
      check('an echo stream round-trips', round.ok, `${ms(round.rttMs)}${retried(round)}`),
      check('bob is an authenticated, protected member', alice.services.realm.isMember(bob.peerId) && alice.services.connections.isProtected(bob.peerId, TAGS.realmMember), `protected by '${TAGS.realmMember}'`)
    ]
  }
}

/** 6 attempts of 3 s (the test preset's upgradeTimeoutMs) fit in the step's 30 s */
const UPGRADE_TRIES = 6

/**
 * The background upgrade may have been made already, or a loopback WebRTC attempt may stall:
 * then ask the path selector for another at once instead of waiting on its backoff.
 */
async function upgradeSoon (paths: PathSelector, peer: PeerId, upgraded: Promise<unknown>, signal: AbortSignal): Promise<void> {
  for (let attempt = 0; attempt < UPGRADE_TRIES && paths.mode(peer) !== 'direct-primary'; attempt++) {
    await raceSignal(Promise.race([upgraded, paths.upgrade(peer, { signal })]), signal)
  }
}

const rttOf = (path?: Path): string => ms(path?.rttMs ?? Number.NaN)

const relayFirstUpgrade: Step = {
  id: 'relay-first-upgrade',
  title: 'relay-first connect, WebRTC upgrade',
  evidence: 2,
  async run ({ alice, carol }, signal) {
    const paths = alice.services.paths
    const upgraded = nextEvent<HoldfastEvents['path:upgraded']>(paths, 'path:upgraded', d => d.peer.equals(carol.peerId), signal)
    upgraded.catch(() => {}) // awaited below; a failed connect must not leave it unhandled
    const started = performance.now()
    await alice.services.realm.connect(carol.peerId, { signal })
    const connectMs = performance.now() - started
    // in the order they opened: carol may have reached alice (through the relay) during the realm's formation
    const first = paths.paths(carol.peerId)[0]
    let durationMs = Number.NaN
    upgraded.then(d => { durationMs = d.durationMs }, () => {})
    await upgradeSoon(paths, carol.peerId, upgraded, signal)
    const { best, direct, round } = await echoOverBest(alice, carol.peerId, signal)
    const relayed = paths.paths(carol.peerId).find(p => p.kind === 'relayed')
    return [
      check('the first path is through the relay', first?.kind === 'relayed' && first.remoteAddr.toString().includes('/p2p-circuit'), `${first?.transport ?? 'none'}, connected in ${ms(connectMs)}`),
      check('no direct TCP or WebSocket path: carol is behind a NAT', paths.paths(carol.peerId).every(p => p.kind === 'relayed' || p.transport === 'webrtc'), paths.paths(carol.peerId).map(p => p.transport).join(' + ')),
      check('upgraded to a direct WebRTC path in the background', paths.mode(carol.peerId) === 'direct-primary' && best?.transport === 'webrtc', `${paths.mode(carol.peerId) ?? 'no mode'} over ${best?.transport ?? 'nothing'}, ${Number.isNaN(durationMs) ? 'made before this step' : `${ms(durationMs)} after the relayed connect`}`),
      check('the relayed connection is kept as a protected backup', relayed != null && relayed.status !== 'closed' && alice.services.connections.isProtected(carol.peerId, TAGS.relayBackup), `relayed path ${relayed?.status ?? 'gone'}, protected by '${TAGS.relayBackup}'`),
      check('an echo over the WebRTC connection', round.ok && direct.remoteAddr.toString().includes('/webrtc'), `${ms(round.rttMs)} (relayed ping RTT ${rttOf(relayed)}, WebRTC ${rttOf(best)})${retried(round)}`)
    ]
  }
}

const { toleranceWindow, initialDelay, jitter } = reconnectorDefaults
/** timers on the real clock may fire a few ms off performance.now()'s reckoning */
const CLOCK_SLACK_MS = 50
/** one loopback dial with its noise and yamux handshakes, on a loaded CI machine */
const DIAL_ALLOWANCE_MS = 2_000
/**
 * Both sides hold each other for the window, then one redials (first backoff band, ±jitter):
 * with neither side's app stepping in, that is when a flap ends at the latest.
 */
const backBy = toleranceWindow + initialDelay * (1 + jitter) + DIAL_ALLOWANCE_MS

const flapHidden: Step = {
  id: 'flap-hidden',
  title: 'flap hidden by the tolerance window',
  evidence: 3,
  async run ({ alice, bob }, signal) {
    const reconnector = alice.services.reconnector
    const isBob = (d: { peer: PeerId }): boolean => d.peer.equals(bob.peerId)
    const offline = collect<HoldfastEvents['peer:offline']>(reconnector, 'peer:offline', isBob)
    const reconnecting = collect<HoldfastEvents['peer:reconnecting']>(reconnector, 'peer:reconnecting', isBob)
    const held = nextEvent<HoldfastEvents['peer:held']>(reconnector, 'peer:held', isBob, signal)
    const recovered = nextEvent<HoldfastEvents['peer:recovered']>(reconnector, 'peer:recovered', isBob, signal)
    held.catch(() => {})
    recovered.catch(() => {})
    try {
      // the link drops under both peers: every connection between them dies at once
      const dropped = alice.getConnections(bob.peerId)
      const droppedAt = performance.now()
      dropped.forEach(connection => { connection.abort(new Error('simulated network flap')) })
      await held
      const heldAfter = performance.now() - droppedAt
      const back = await recovered
      const firstRedial = reconnecting.at[0] - droppedAt
      const round = await echoPeer(alice, bob.peerId, signal)
      // a duplicate connection closed after the return can hold bob again for a moment, unseen by the app
      await connectedAgain(alice, bob.peerId, signal)
      return [
        check('the flap closed every alice↔bob connection', dropped.length > 0 && dropped.every(c => c.status !== 'open'), `${dropped.length} connection(s) aborted`),
        check('the reconnector held bob instead of dropping him', heldAfter < 1_000, `peer:held ${ms(heldAfter)} after the drop`),
        check(`no redial inside the ${toleranceWindow / 1000} s tolerance window`, reconnecting.seen.length === 0 || firstRedial >= toleranceWindow - CLOCK_SLACK_MS, reconnecting.seen.length === 0 ? 'no attempt was needed' : `first attempt scheduled ${ms(firstRedial)} after the drop`),
        check('bob came back by the first redial at the latest', back.downtimeMs < backBy, `peer:recovered (${back.how}) after ${ms(back.downtimeMs)}, ${back.attempts} attempt(s) of alice's (by ${ms(backBy)}: window + first backoff + a dial)`),
        check('the app never saw bob go offline', offline.seen.length === 0, `peer:offline events: ${offline.seen.length}`),
        check('bob is connected and answers', reconnector.state(bob.peerId) === 'connected' && round.ok, `echo ${ms(round.rttMs)}${retried(round)}`)
      ]
    } finally {
      offline.stop()
      reconnecting.stop()
    }
  }
}

function snapshot (sequence: number, availability: NetworkSnapshot['availability'], wifi: boolean, cellular: boolean): NetworkSnapshot {
  return { sequence, availability, transport: { wifi, cellular, ethernet: false, vpn: false, other: false }, isExpensive: cellular, isConstrained: false }
}

const wifiToCellular: Step = {
  id: 'wifi-to-cellular',
  title: 'Wi-Fi → cellular burst, one batch',
  async run ({ alice, relay, bob }, signal) {
    const network = alice.services.network
    // above any sequence the Node adapter has handed out
    const base = (network.snapshot()?.sequence ?? 0) + 1_000
    await network.networkPathChanged(snapshot(base, 'available', true, false), { signal })

    const batches = collect<HoldfastEvents['network:batch']>(network, 'network:batch', () => true)
    const actions = collect<HoldfastEvents['network:action']>(network, 'network:action', () => true)
    try {
      // what a phone's platform reports as it walks out of Wi-Fi range, within a few ms
      const burst: NetworkEvent[] = [
        { type: 'network-path-changed', snapshot: snapshot(base + 1, 'unknown', true, false) },
        { type: 'network-path-changed', snapshot: snapshot(base + 2, 'unavailable', false, false) },
        { type: 'network-path-changed', snapshot: snapshot(base + 3, 'available', false, true) },
        { type: 'app-lifecycle-changed', state: { state: 'background' } },
        { type: 'app-lifecycle-changed', state: { state: 'foreground', backgroundDurationMs: 800 } },
        { type: 'network-path-changed', snapshot: snapshot(base + 4, 'available', false, true) }
      ]
      const started = performance.now()
      const results: NetworkEventResult[] = await Promise.all(burst.map(async event => network.handle(event, { signal })))
      const elapsed = performance.now() - started
      const action = actions.seen[0]
      const lost = Object.entries({ relay, bob }).filter(([, peer]) => alice.getConnections(peer.peerId).length === 0).map(([name]) => name)
      return [
        check(`${burst.length} events became one batch`, batches.seen.length === 1 && batches.seen[0].events.length === burst.length, `${batches.seen.length} batch(es) of ${batches.seen.map(b => b.events.length).join(', ')} events`),
        check('one recovery action ran: restore', actions.seen.length === 1 && action?.action === 'restore' && action.success, `${actions.seen.map(a => `${a.action} ${a.success ? 'ok' : String(a.error)}`).join(', ')} in ${ms(action?.durationMs ?? 0)}`),
        check('every caller got the same outcome', results.every(r => r.success), `${results.filter(r => r.success).length}/${results.length} answered success, ${ms(elapsed)} after the first event (400 ms settle window included)`),
        check('alice is on cellular, still connected to the relay and bob', network.snapshot()?.transport.cellular === true && lost.length === 0, lost.length === 0 ? 'paths validated by ping, relay re-dialled, realm re-announced' : `no connection to ${lost.join(' and ')}`)
      ]
    } finally {
      batches.stop()
      actions.stop()
    }
  }
}

async function createExtra (): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
}

const trimSparesProtected: Step = {
  id: 'trim-spares-protected',
  title: 'trim that spares protected peers',
  evidence: 1,
  async run (cast, signal) {
    const { alice, relay, bob, carol } = cast
    const connections = alice.services.connections
    cast.extras = await Promise.all(Array.from({ length: EXTRA_PEERS }, createExtra))
    const aliceAddr = alice.getMultiaddrs().find(ma => ma.toString().includes('/tcp/') && !ma.toString().includes('/ws'))
    if (aliceAddr == null) {
      throw new Error('alice has no TCP address')
    }
    await Promise.all(cast.extras.map(async extra => extra.dial(aliceAddr, { signal })))
    await Promise.all(cast.extras.map(async extra => {
      if (alice.getConnections(extra.peerId).length === 0) {
        await nextEvent<PeerId>(alice, 'peer:connect', peer => peer.equals(extra.peerId), signal)
      }
    }))
    const members = [relay, bob, carol]
    const closedEvents = collect<HoldfastEvents['connection:closed-by-manager']>(connections, 'connection:closed-by-manager', () => true)
    try {
      const before = alice.getConnections().length
      connections.setLimits(TRIM_LIMITS)
      const plan = connections.explainTrim()
      const gone = Promise.all(cast.extras.map(async extra => {
        if (alice.getConnections(extra.peerId).length > 0) {
          await nextEvent<PeerId>(alice, 'peer:disconnect', peer => peer.equals(extra.peerId), signal)
        }
      }))
      const report = await connections.trim({ signal })
      await gone
      const extraIds = new Set(cast.extras.map(e => e.peerId.toString()))
      const closed = report.closed.map(p => p.toString())
      const sparedMembers = members.filter(m => alice.getConnections(m.peerId).length > 0 && connections.isProtected(m.peerId))
      return [
        check(`alice had ${EXTRA_PEERS} unprotected peers more than her members`, before >= EXTRA_PEERS + members.length, `${before} connections, watermarks lowWater ${TRIM_LIMITS.lowWater} / highWater ${TRIM_LIMITS.highWater}`),
        check('the trim closed exactly the unprotected peers', closed.length === EXTRA_PEERS && closed.every(p => extraIds.has(p)) && plan.close.length === EXTRA_PEERS, `${closed.length} closed in ${ms(report.durationMs)}, as explainTrim() planned`),
        check('every protected member is still connected', sparedMembers.length === members.length, `${sparedMembers.length}/${members.length} members kept ('${TAGS.realmMember}'), shortfall ${report.shortfall} reported instead of closing them`),
        check('each close was announced with its reason', closedEvents.seen.length === EXTRA_PEERS && closedEvents.seen.every(e => e.reason === 'trim'), `${closedEvents.seen.length} connection:closed-by-manager (trim)`)
      ]
    } finally {
      closedEvents.stop()
      const { lowWater, highWater, gracePeriod } = connectionManagerDefaults
      connections.setLimits({ lowWater, highWater, gracePeriod })
    }
  }
}

const pendingFailFast: Step = {
  id: 'pending-fail-fast',
  title: 'pending requests fail at once on peer loss',
  evidence: 2,
  async run ({ alice, bob }, signal) {
    const broadcaster = alice.services.broadcaster
    let opened = 0
    let allOpen: () => void = () => {}
    const served = new Promise<void>(resolve => { allOpen = resolve })
    await bob.handle(SILENT, () => {
      if (++opened === PENDING_REQUESTS) {
        allOpen()
      }
    }, { maxInboundStreams: PENDING_REQUESTS + 16 })
    // real requests: a stream each to a handler that never answers, bound to bob by the broadcaster
    const requests = Array.from({ length: PENDING_REQUESTS }, async () => broadcaster.track(bob.peerId, async (requestSignal) => {
      // libp2p's default of 64 outbound streams per protocol and connection would refuse the rest
      const stream = byteStream(await alice.dialProtocol(bob.peerId, SILENT, { signal: requestSignal, maxOutboundStreams: PENDING_REQUESTS }))
      // a reply has at least a byte: a stream that ends without one is a failed request (UnexpectedEOFError)
      await stream.read({ bytes: 1, signal: requestSignal })
    }, { timeout: REQUEST_TIMEOUT_MS }))
    const outcomes = requests.map(async request => request.then(() => 'answered', (err: Error) => err.name))
    const pending = broadcaster.pending(bob.peerId)
    await raceSignal(served, signal)

    let lastFailedAt = 0
    const timed = outcomes.map(async outcome => outcome.finally(() => { lastFailedAt = performance.now() }))
    const held = nextEvent<HoldfastEvents['peer:held']>(alice.services.reconnector, 'peer:held', d => d.peer.equals(bob.peerId), signal)
    held.catch(() => {})
    const stoppedAt = performance.now()
    await bob.stop()
    const names = await Promise.all(timed)
    // bob's streams can end before alice's side of the connection has closed
    await held
    const latency = lastFailedAt - stoppedAt
    const byName = Object.entries(names.reduce<Record<string, number>>((counts, name) => ({ ...counts, [name]: (counts[name] ?? 0) + 1 }), {}))
    const state = alice.services.reconnector.state(bob.peerId)
    return [
      check(`${PENDING_REQUESTS} requests were pending on bob`, pending === PENDING_REQUESTS && opened === PENDING_REQUESTS, `pending(bob) = ${pending}, ${opened} streams open on bob, none answered`),
      check('all of them failed when bob went away', names.every(n => n !== 'answered'), byName.map(([name, n]) => `${n} ${name}`).join(', ')),
      check('at once, not at their timeout', latency < FAIL_FAST_MS, `the last ${ms(latency)} after bob stopped, vs the ${REQUEST_TIMEOUT_MS / 1000} s timeout`),
      check('nothing is left pending on bob', broadcaster.pending(bob.peerId) === 0, `pending(bob) = ${broadcaster.pending(bob.peerId)}`),
      check('bob is still held for a reconnect', state === 'held' || state === 'reconnecting', `reconnector: ${state ?? 'not watched'}`)
    ]
  }
}

/**
 * The flap comes after the burst and the trim: right after the realm forms, dials between alice
 * and bob can still be in flight, and one landing after the drop would end the flap, not the
 * reconnector. Bob goes away for good last.
 */
export const STEPS: readonly Step[] = [
  realmFormation,
  connectById,
  relayFirstUpgrade,
  wifiToCellular,
  trimSparesProtected,
  flapHidden,
  pendingFailFast
]
