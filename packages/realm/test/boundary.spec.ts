/**
 * The realm as an access boundary, proved with real nodes. An outsider is a plain libp2p node
 * (no realm service, no PSK) on 127.0.0.1; each test asserts something it could do without the
 * boundary. Disconnect times are printed (`[boundary]` lines) with their p50/p95 at the end.
 */

import { connect, createFakeClock, createNode, expectNoLeaks, onceEvent, stopAll } from '@holdfast/test-utils'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { FaultTolerance } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { createDhtRecord } from '../src/dht.ts'
import { deriveKeys, dhtKey, membersOnly, realmDhtValidator } from '../src/index.ts'
import { createMember, joined, onceRealm, PSK, subscribed, topicOf, watchNext } from './fixtures.ts'
import { putValue, realmKad, storesRecord } from './kad-wire.ts'
import type { RealmNode } from './fixtures.ts'
import type { NodeOptions } from '@holdfast/test-utils'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Connection, Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { KadDHT, QueryEvent } from '@libp2p/kad-dht'
import type { Multiaddr } from '@multiformats/multiaddr'

/** ms; small, so each verdict takes half a second */
const AUTH_TIMEOUT = 500
/** ms an outsider may outlast `authTimeout`: the abort still has to reach it through its transport */
const MARGIN = 1_000
/** ms a measured hold may fall short of `authTimeout`: each end stamps the open at a slightly different moment, and timers have millisecond granularity */
const EARLY = 50

const REALM_ID = deriveKeys(PSK).realmId
const AUTH_PROTOCOL = `/holdfast/realm/${REALM_ID}/auth/1.0.0`
const KAD_PROTOCOL = `/holdfast/realm/${REALM_ID}/kad/1.0.0`

// ---- disconnect times ----

/** open → close of one rejected connection, in ms, as each end saw it */
interface Hold { via: string, outsider?: number, member: number }
const holds: Hold[] = []

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]
}

function log (line: string): void {
  // eslint-disable-next-line no-console
  console.info(`      [boundary] ${line}`)
}

/** both ends held the rejected connection for about `authTimeout`: not less (the outsider was silent), not much more */
function expectHeld (via: string, outsider: number, member: number): void {
  holds.push({ via, outsider, member })
  log(`${via}: outsider held ${outsider.toFixed(1)} ms, member ${member.toFixed(1)} ms (authTimeout ${AUTH_TIMEOUT})`)
  expect(member, 'member side').to.be.within(AUTH_TIMEOUT - EARLY, AUTH_TIMEOUT + MARGIN)
  expect(outsider, 'outsider side').to.be.within(AUTH_TIMEOUT - EARLY, AUTH_TIMEOUT + MARGIN)
}

/**
 * Dials a member that denies the outsider. Noise negotiates the muxer inside its handshake, so
 * a TCP or WebSocket dialer is done with its upgrade before the member's gate has seen its peer
 * ID: such a dial may resolve, with a connection the member has already dropped. Either way the
 * member never opens a connection (no `connection:open`), and no stream opens on it.
 */
async function redialDenied (outsider: Libp2p<any>, member: Libp2p<any>, addrs: Multiaddr | Multiaddr[], lingers = false): Promise<string> {
  let opened = 0
  const onOpen = ({ detail }: CustomEvent<Connection>): void => {
    if (detail.remotePeer.equals(outsider.peerId)) {
      opened++
    }
  }
  member.addEventListener('connection:open', onOpen)
  try {
    let connection: Connection
    try {
      connection = await outsider.dial(addrs)
    } catch (err: any) {
      return `rejected (${err.name})`
    }
    const resolved = performance.now()
    if (lingers) {
      // see WEBSOCKET_RESET_BROKEN: the socket stays, the member no longer answers on it
      await expect(connection.newStream('/ipfs/ping/1.0.0', { signal: AbortSignal.timeout(AUTH_TIMEOUT) })).to.eventually.be.rejected()
      await connection.close().catch(err => { connection.abort(err) })
      return 'resolved, dead (the member answers nothing on it), socket left open by the member'
    }
    if (connection.status === 'open') {
      await new Promise<void>(resolve => { connection.addEventListener('close', () => { resolve() }, { once: true }) })
    }
    const held = performance.now() - resolved
    await expect(connection.newStream('/ipfs/ping/1.0.0')).to.eventually.be.rejected()
    expect(held, 'dropped by the gate, not by the auth timer').to.be.below(AUTH_TIMEOUT)
    return `resolved, closed after ${held.toFixed(1)} ms`
  } finally {
    member.removeEventListener('connection:open', onOpen)
    expect(opened, 'the member never opened the connection').to.equal(0)
  }
}

// ---- transports ----

/**
 * `@libp2p/websockets` 10.1.21 resets a WebSocket with `close(1006)`, a code no endpoint may send
 * (RFC 6455 §7.4.1): `ws` throws, the abort swallows it, and the socket outlives the aborted
 * connection until the remote closes it (js-libp2p#3625). The member drops the connection at
 * authTimeout all the same, and nothing more is answered on it; the outsider only finds out
 * from its own connection monitor. When this test fails because the outsider does see the close,
 * the upstream fix has landed: set it to false.
 */
const WEBSOCKET_RESET_BROKEN = true

interface Via {
  name: string
  opts(): NodeOptions<any>
  /** the transport leaves the socket open after an abort */
  lingers: boolean
}

const TRANSPORTS: Via[] = [
  { name: 'TCP', opts: () => ({ transport: 'tcp' }), lingers: false },
  { name: 'WebSockets', opts: () => ({ config: { addresses: { listen: ['/ip4/127.0.0.1/tcp/0/ws'] }, transports: [webSockets()] } }), lingers: WEBSOCKET_RESET_BROKEN }
]

// ---- relays ----

/** a realm member running a circuit-relay server on 127.0.0.1 TCP, with no limit on relayed connections (identify and pings would eat the default budget) */
async function createRelayMember (init: Record<string, unknown> = {}): Promise<RealmNode> {
  return createMember({ authTimeout: AUTH_TIMEOUT, ...init }, { transport: 'tcp', services: { relay: circuitRelayServer({ reservations: { applyDefaultLimit: false } }) } })
}

/** a member holding a reservation on `relay` */
async function createReservedMember (relay: Libp2p<any>): Promise<RealmNode> {
  const member = await createMember({ authTimeout: AUTH_TIMEOUT }, {
    config: {
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0', `${relay.getMultiaddrs()[0].toString()}/p2p-circuit`] },
      transports: [tcp(), circuitRelayTransport()]
    }
  })
  const reserved = (): boolean => member.getMultiaddrs().some(ma => ma.toString().includes('/p2p-circuit'))
  if (!reserved()) {
    await onceEvent(member, 'self:peer:update', reserved)
  }
  return member
}

/** a plain node that dials circuits; `listen` asks for a reservation too (a refusal must not fail its start) */
async function createCircuitOutsider (listen: string[] = []): Promise<Libp2p<any>> {
  return createNode({
    config: {
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0', ...listen] },
      transports: [tcp(), circuitRelayTransport()],
      transportManager: { faultTolerance: FaultTolerance.NO_FATAL }
    }
  })
}

// ---- the realm DHT ----

/** kad-dht's routing table, which its public types leave out */
interface RoutingTable extends EventTarget {
  find(peer: PeerId): Promise<unknown>
}

type RealmKad = KadDHT & { routingTable: RoutingTable }
type DhtNode = RealmNode & Libp2p<{ dht: RealmKad }>

async function inRoutingTable (node: Libp2p<{ dht: RealmKad }>, peer: PeerId): Promise<void> {
  const table = node.services.dht.routingTable
  if ((await table.find(peer)) != null) {
    return
  }
  await new Promise<void>(resolve => {
    const listener = (event: Event): void => {
      if ((event as CustomEvent<PeerId>).detail.equals(peer)) {
        table.removeEventListener('peer:add', listener)
        resolve()
      }
    }
    table.addEventListener('peer:add', listener)
  })
}

async function drain (events: AsyncIterable<QueryEvent>): Promise<QueryEvent[]> {
  const out: QueryEvent[] = []
  try {
    for await (const event of events) {
      out.push(event)
    }
  } catch {
    // a refused query ends in an error: what was yielded before is the answer
  }
  return out
}

/** the peer IDs a query's events reveal: final peers, and the closer peers of each response */
function revealed (events: QueryEvent[]): string[] {
  return events.flatMap(e => {
    if (e.name === 'FINAL_PEER') {
      return [e.peer.id.toString()]
    }
    if (e.name === 'PEER_RESPONSE') {
      return [e.from.toString(), ...e.closer.map(p => p.id.toString())]
    }
    return []
  })
}

// ---- the member list ----

type PubsubNode = Libp2p<{ pubsub: GossipSub }>

async function createListeningOutsider (topic: string): Promise<{ outsider: PubsubNode, received: Array<{ from: string, data: Uint8Array }> }> {
  const outsider = await createNode({ services: { pubsub: gossipsub({ heartbeatInterval: 100 }) } }) as unknown as PubsubNode
  const received: Array<{ from: string, data: Uint8Array }> = []
  outsider.services.pubsub.addEventListener('message', ({ detail }) => {
    if (detail.topic === topic && detail.type === 'signed') {
      received.push({ from: detail.from.toString(), data: detail.data })
    }
  })
  outsider.services.pubsub.subscribe(topic)
  return { outsider, received }
}

/** resolves once the stream has closed (at once when it already has) */
async function ended (stream: Stream): Promise<void> {
  if (stream.status === 'open' || stream.status === 'closing') {
    await new Promise(resolve => { stream.addEventListener('close', resolve, { once: true }) })
  }
}

function includesBytes (haystack: Uint8Array, needle: Uint8Array): boolean {
  for (let i = 0; i + needle.length <= haystack.length; i++) {
    if (needle.every((byte, j) => haystack[i + j] === byte)) {
      return true
    }
  }
  return false
}

/** no address of any member, in binary or text form, is in the payload */
function expectSealed (data: Uint8Array, members: Array<Libp2p<any>>): void {
  const text = new TextDecoder().decode(data)
  for (const member of members) {
    for (const addr of member.getMultiaddrs()) {
      const bare = addr.decapsulateCode(421)
      expect(includesBytes(data, bare.bytes), `${bare.toString()} in binary`).to.be.false()
      expect(text, 'an address in text').to.not.include(bare.toString())
    }
  }
}

describe('the realm as an access boundary', () => {
  /** every node of the test, stopped and checked for leaks after it */
  const nodes: Array<Libp2p<any>> = []

  afterEach(async () => {
    const all = nodes.splice(0)
    await stopAll(all)
    for (const node of all) {
      if (node.services.realm != null) {
        expectNoLeaks(node.services.realm)
      }
    }
  })

  after(() => {
    for (const [name, values] of [['outsider', holds.flatMap(h => h.outsider ?? [])], ['member', holds.map(h => h.member)]] as const) {
      if (values.length > 0) {
        log(`${name} side, ${values.length} rejected connections: p50 ${percentile(values, 0.5).toFixed(1)} ms, p95 ${percentile(values, 0.95).toFixed(1)} ms (authTimeout ${AUTH_TIMEOUT})`)
      }
    }
  })

  describe('a silent outsider is closed at authTimeout and then denied', () => {
    for (const via of TRANSPORTS) {
      it(`over ${via.name}: closed at authTimeout, denied both ways, each attempt counted`, async () => {
        const member = await createMember({ authTimeout: AUTH_TIMEOUT }, via.opts())
        const outsider = await createNode({ ...via.opts(), config: { ...via.opts().config, connectionMonitor: { enabled: false } } })
        nodes.push(member, outsider)

        const rejected = onceRealm(member, 'realm:rejected', d => d.peer.equals(outsider.peerId))
        const [outsiderSide, memberSide] = await Promise.all([watchNext(outsider, member.peerId), watchNext(member, outsider.peerId), outsider.dial(member.getMultiaddrs())])
        const memberHeld = await memberSide.held
        expect(await rejected).to.have.property('reason', 'auth-timeout')
        if (via.lingers) {
          holds.push({ via: via.name, member: memberHeld })
          log(`${via.name}: member dropped the connection after ${memberHeld.toFixed(1)} ms; the outsider's socket stays open (WEBSOCKET_RESET_BROKEN)`)
          expect(memberHeld).to.be.within(AUTH_TIMEOUT - EARLY, AUTH_TIMEOUT + MARGIN)
          // nothing is answered on it any more
          await expect(outsiderSide.connection.newStream('/ipfs/ping/1.0.0', { signal: AbortSignal.timeout(AUTH_TIMEOUT) })).to.eventually.be.rejected()
          // the close does not reach the outsider within the margin (this waits for an event that must not come, so it is bounded)
          const seen = await Promise.race([outsiderSide.held.then(() => true), new Promise<boolean>(resolve => setTimeout(() => { resolve(false) }, MARGIN))])
          expect(seen, 'the outsider saw the close: fixed upstream? set WEBSOCKET_RESET_BROKEN to false').to.be.false()
          await outsiderSide.connection.close().catch(err => { outsiderSide.connection.abort(err) })
        } else {
          expectHeld(via.name, await outsiderSide.held, memberHeld)
        }
        expect(outsider.getConnections(member.peerId)).to.be.empty()

        // back while denied: refused at the member's gate, inbound and outbound, without a dial for realm.connect
        const deniedIn = onceRealm(member, 'realm:rejected', d => d.peer.equals(outsider.peerId))
        log(`${via.name}: redial while denied ${await redialDenied(outsider, member, member.getMultiaddrs(), via.lingers)}`)
        expect(await deniedIn).to.have.property('reason', 'denied')
        await expect(member.dial(outsider.getMultiaddrs())).to.eventually.be.rejected.with.property('name', 'DialDeniedError')
        await expect(member.services.realm.connect(outsider.peerId)).to.eventually.be.rejected.with.property('name', 'NotRealmMemberError')

        const stats = member.services.realm.stats()
        expect(stats.connectionsRejected).to.deep.equal({ 'auth-failed': 0, 'auth-timeout': 1, denied: 2 })
        expect(stats.authFailures).to.deep.equal({ timeout: 1 })
        expect(stats.authFailed).to.equal(1)
        expect(member.getConnections(outsider.peerId)).to.be.empty()
        expect(member.services.realm.internalSizes()).to.include({ pendingAuth: 0, denied: 1 })
        expect(member.services.realm.isMember(outsider.peerId)).to.be.false()
      })
    }

    it('the denial lasts 10 s, then 20 s after the next failure (fake clock)', async () => {
      const clock = createFakeClock()
      const member = await createMember({ authTimeout: AUTH_TIMEOUT, clock })
      const outsider = await createNode()
      nodes.push(member, outsider)

      /** connects and lets authTimeout pass on the fake clock: the member closes the connection */
      const failOnce = async (): Promise<void> => {
        const rejected = onceRealm(member, 'realm:rejected', d => d.peer.equals(outsider.peerId) && d.reason === 'auth-timeout')
        await connect(outsider, member)
        await clock.tickAsync(AUTH_TIMEOUT)
        await rejected
      }
      /** whether the member's gate turns a dial away; a dial may resolve before the gate looked (see redialDenied): then the member opening it or the outsider losing it says */
      const denied = async (): Promise<boolean> => {
        const memberOpened = onceEvent(member, 'connection:open', c => c.remotePeer.equals(outsider.peerId))
        let connection: Connection
        try {
          connection = await outsider.dial(member.getMultiaddrs())
        } catch {
          return true
        }
        const lost = new Promise<boolean>(resolve => {
          if (connection.status !== 'open') {
            resolve(true)
          }
          connection.addEventListener('close', () => { resolve(true) }, { once: true })
        })
        const turnedAway = await Promise.race([memberOpened.then(() => false), lost])
        if (!turnedAway) {
          await connection.close()
        }
        return turnedAway
      }

      await failOnce()
      expect(await denied()).to.be.true()
      await clock.tickAsync(9_999)
      expect(await denied()).to.be.true()
      await clock.tickAsync(1)
      // the backoff is over: the outsider gets in, fails again, and is denied twice as long
      await failOnce()
      await clock.tickAsync(19_999)
      expect(await denied()).to.be.true()
      await clock.tickAsync(1)
      expect(await denied()).to.be.false()
      expect(member.services.realm.stats().connectionsRejected).to.deep.equal({ 'auth-failed': 0, 'auth-timeout': 2, denied: 3 })
    })
  })

  describe('circuits', () => {
    it('through a realm relay: the relay refuses the circuit, closes the outsider at authTimeout and denies it', async () => {
      const relay = await createRelayMember()
      const target = await createReservedMember(relay)
      const outsider = await createCircuitOutsider()
      nodes.push(relay, target, outsider)
      let reachedTarget = 0
      target.addEventListener('connection:open', ({ detail }) => { reachedTarget += detail.remotePeer.equals(outsider.peerId) ? 1 : 0 })
      const circuit = multiaddr(`${relay.getMultiaddrs()[0].toString()}/p2p-circuit/p2p/${target.peerId.toString()}`)

      const rejected = onceRealm(relay, 'realm:rejected', d => d.peer.equals(outsider.peerId))
      const watched = Promise.all([watchNext(outsider, relay.peerId), watchNext(relay, outsider.peerId)])
      await expect(outsider.dial(circuit)).to.eventually.be.rejected()
      const [outsiderSide, relaySide] = await watched
      expectHeld('circuit, refused by the realm relay', await outsiderSide.held, await relaySide.held)
      expect(await rejected).to.have.property('reason', 'auth-timeout')
      expect(relay.services.realm.stats().circuitsDenied).to.equal(1)

      const deniedIn = onceRealm(relay, 'realm:rejected', d => d.peer.equals(outsider.peerId))
      log(`circuit through the realm relay: redial while denied ${await redialDenied(outsider, relay, circuit)}`)
      expect(await deniedIn).to.have.property('reason', 'denied')

      const stats = relay.services.realm.stats()
      expect(stats.connectionsRejected).to.deep.equal({ 'auth-failed': 0, 'auth-timeout': 1, denied: 1 })
      expect(stats.circuitsDenied).to.equal(1)
      expect(stats.authFailures).to.deep.equal({ timeout: 1 })
      expect(reachedTarget, 'the circuit never reached the member').to.equal(0)
      expect(target.services.realm.stats().authFailed).to.equal(0)
    })

    it('through a relay that lets circuits pass: the target member closes the relayed connection at authTimeout and denies the relayed redial', async () => {
      // a member relay that neither closes outsiders nor keeps its circuits for members: the target's own gate is all that is left
      const relay = await createRelayMember({ exclusive: false, relayMembersOnly: false })
      const target = await createReservedMember(relay)
      const outsider = await createCircuitOutsider()
      nodes.push(relay, target, outsider)
      const circuit = multiaddr(`${relay.getMultiaddrs()[0].toString()}/p2p-circuit/p2p/${target.peerId.toString()}`)

      const rejected = onceRealm(target, 'realm:rejected', d => d.peer.equals(outsider.peerId))
      const [outsiderSide, targetSide, connection] = await Promise.all([watchNext(outsider, target.peerId), watchNext(target, outsider.peerId), outsider.dial(circuit)])
      expect(connection.direct, 'relayed').to.be.false()
      expect(targetSide.connection.direct).to.be.false()
      expectHeld('circuit, closed by the target member', await outsiderSide.held, await targetSide.held)
      expect(await rejected).to.have.property('reason', 'auth-timeout')
      expect(outsider.getConnections(relay.peerId), 'the relay kept its own connection').to.not.be.empty()

      // the relay lets the redial through again; the target's gate refuses the relayed connection
      const deniedIn = onceRealm(target, 'realm:rejected', d => d.peer.equals(outsider.peerId))
      log(`circuit past a permissive relay: redial while denied ${await redialDenied(outsider, target, circuit)}`)
      expect(await deniedIn).to.have.property('reason', 'denied')
      expect(target.services.realm.stats().connectionsRejected).to.deep.equal({ 'auth-failed': 0, 'auth-timeout': 1, denied: 1 })
      expect(relay.services.realm.stats().circuitsDenied).to.equal(0)
    })

    it('a realm relay refuses a reservation to an outsider, and closes it at authTimeout', async () => {
      const relay = await createRelayMember()
      nodes.push(relay)
      const denied = onceRealm(relay, 'reservation:denied')
      const rejected = onceRealm(relay, 'realm:rejected', d => d.reason === 'auth-timeout')
      const outsider = await createCircuitOutsider([`${relay.getMultiaddrs()[0].toString()}/p2p-circuit`])
      nodes.push(outsider)
      expect((await denied).peer.equals(outsider.peerId)).to.be.true()
      expect((await rejected).peer.equals(outsider.peerId)).to.be.true()
      expect(outsider.getMultiaddrs().map(String).some(a => a.includes('/p2p-circuit'))).to.be.false()
      expect(relay.services.realm.stats().reservationsDenied).to.equal(1)
      // a member does get one
      nodes.push(await createReservedMember(relay))
      expect(relay.services.realm.stats().reservationsDenied).to.equal(1)
    })
  })

  it('an outsider cannot hold auth streams: 32 on one connection all end by authTimeout, each counted, nothing left', async () => {
    // not exclusive: the connection itself survives, so what is left of the streams shows
    const member = await createMember({ authTimeout: AUTH_TIMEOUT, exclusive: false })
    const outsider = await createNode()
    nodes.push(member, outsider)
    const connection = await connect(outsider, member)
    const opened = performance.now()

    const STREAMS = 32
    const closedAt = await Promise.all(Array.from({ length: STREAMS }, async (_, i) => {
      const stream = await connection.newStream(AUTH_PROTOCOL)
      const closed = stream.status === 'open'
        ? new Promise<number>(resolve => { stream.addEventListener('close', () => { resolve(performance.now() - opened) }, { once: true }) })
        : Promise.resolve(performance.now() - opened)
      if (i % 2 === 1 && stream.status === 'open') {
        // half a length prefix: the reader waits for the rest
        stream.send(Uint8Array.of(0x80))
      }
      return closed
    }))
    const last = Math.max(...closedAt)
    log(`${STREAMS} auth streams: all ended within ${last.toFixed(1)} ms of the connection`)
    expect(last).to.be.at.most(AUTH_TIMEOUT + MARGIN)
    // the one the member took ran out at authTimeout; the others were refused at once
    expect(closedAt.filter(ms => ms >= AUTH_TIMEOUT - EARLY)).to.have.lengthOf(1)

    // the exchange has failed: a new stream is refused at once
    await ended(await connection.newStream(AUTH_PROTOCOL))

    const failures = member.services.realm.stats().authFailures
    expect(failures).to.deep.equal({ 'duplicate-stream': STREAMS, timeout: 1 })
    expect((failures['duplicate-stream'] ?? 0) + (failures.timeout ?? 0), 'one failure per stream').to.equal(STREAMS + 1)
    expect(member.services.realm.internalSizes().pendingAuth).to.equal(0)
    const memberSide = member.getConnections(outsider.peerId)
    expect(memberSide).to.have.lengthOf(1)
    expect(memberSide[0].status).to.equal('open')
    expect(memberSide[0].streams.filter(s => s.protocol === AUTH_PROTOCOL)).to.be.empty()
    expect(connection.streams.filter(s => s.protocol === AUTH_PROTOCOL)).to.be.empty()
    expect(member.services.realm.isMember(outsider.peerId)).to.be.false()
  })

  it('an outsider cannot use the realm DHT: its PUT_VALUE is refused, its queries learn no member; a member\'s same PUT is stored', async () => {
    const dht = { services: { dht: membersOnly(realmKad()) } }
    // a keeps the outsider's connection (not exclusive), so only membersOnly stands between it and the DHT
    const a = await createMember({ authTimeout: AUTH_TIMEOUT, exclusive: false }, dht) as DhtNode
    const b = await createMember({ authTimeout: AUTH_TIMEOUT }, dht) as DhtNode
    const outsiderKey: PrivateKey = await generateKeyPair('Ed25519')
    const outsider = await createNode({ config: { privateKey: outsiderKey }, services: { dht: realmKad() } }) as unknown as Libp2p<{ dht: RealmKad }>
    nodes.push(a, b, outsider)
    const memberBToA = await connect(b, a)
    await Promise.all([joined(a, b.peerId), joined(b, a.peerId)])
    await Promise.all([inRoutingTable(a, b.peerId), inRoutingTable(b, a.peerId)])
    const toA = await connect(outsider, a)
    await inRoutingTable(outsider, a.peerId)

    // a validly signed realm record for the outsider's own peer ID (it cannot seal; the DHT cannot tell)
    const key = dhtKey(REALM_ID, outsider.peerId)
    const value = await createDhtRecord(REALM_ID, 1n, new Uint8Array(64).fill(1), outsiderKey)
    await realmDhtValidator(key, value)

    let denied = a.services.realm.stats().accessDenied
    await expect(putValue(toA, KAD_PROTOCOL, key, value, AUTH_TIMEOUT + MARGIN), 'PUT_VALUE from the outsider').to.eventually.be.rejected()
    expect(a.services.realm.stats().accessDenied).to.be.above(denied)
    expect(await storesRecord(a, key)).to.be.false()
    // the high-level put gets no further: it learns no peer to put to
    await drain(outsider.services.dht.put(key, value))
    expect(await storesRecord(a, key)).to.be.false()
    expect(await drain(b.services.dht.get(key)), 'a GET by another member finds nothing').to.satisfy((events: QueryEvent[]) => events.every(e => e.name !== 'VALUE'))

    // closest peers, asked of a directly: no member is revealed
    denied = a.services.realm.stats().accessDenied
    const asked = await drain(outsider.services.dht.getClosestPeers(key))
    const members = [a.peerId.toString(), b.peerId.toString()]
    expect(revealed(asked).filter(id => members.includes(id)), 'members revealed to the outsider').to.be.empty()
    expect(a.services.realm.stats().accessDenied).to.be.above(denied)
    expect(await a.services.dht.routingTable.find(outsider.peerId), 'the outsider is not in a\'s routing table').to.be.undefined()

    // positive control: the same bytes from a member are stored, found by another member, and a member learns of a
    expect((await putValue(memberBToA, KAD_PROTOCOL, key, value, AUTH_TIMEOUT + MARGIN)).byteLength, 'a replies to the member').to.be.above(0)
    expect(await storesRecord(a, key)).to.be.true()
    const found = (await drain(b.services.dht.get(key))).find(e => e.name === 'VALUE')
    expect(found?.name === 'VALUE' ? found.value : undefined).to.deep.equal(value)
    expect(revealed(await drain(b.services.dht.getClosestPeers(key)))).to.include(a.peerId.toString())
  })

  describe('the member list', () => {
    /** two members that met, and a plain outsider subscribed to their topic, not connected yet */
    async function membersAndListener (exclusive: boolean): Promise<{ a: RealmNode, b: RealmNode, topic: string } & Awaited<ReturnType<typeof createListeningOutsider>>> {
      const [a, b] = await Promise.all([createMember({ authTimeout: AUTH_TIMEOUT, exclusive }), createMember({ authTimeout: AUTH_TIMEOUT, exclusive })])
      nodes.push(a, b)
      await connect(a, b)
      await Promise.all([joined(a, b.peerId), joined(b, a.peerId)])
      const topic = topicOf(a)
      const listener = await createListeningOutsider(topic)
      nodes.push(listener.outsider)
      return { a, b, topic, ...listener }
    }

    it('exclusive: a subscribed outsider is cut at authTimeout; it got only sealed announcements, and gets none after', async () => {
      const { a, b, topic, outsider, received } = await membersAndListener(true)

      const rejected = onceRealm(a, 'realm:rejected', d => d.peer.equals(outsider.peerId))
      const gone = onceEvent(a, 'peer:disconnect', p => p.equals(outsider.peerId))
      await outsider.dial(a.getMultiaddrs())
      expect(await rejected).to.have.property('reason', 'auth-timeout')
      await gone
      const before = received.length
      log(`member list, exclusive: the outsider caught ${before} sealed announcement(s) from ${new Set(received.map(r => r.from)).size} member(s) before it was cut`)
      for (const { data } of received) {
        expectSealed(data, [a, b])
      }

      // the members go on announcing; b receiving one is the proof the outsider would have too
      const heard = new Promise<void>(resolve => {
        b.services.pubsub.addEventListener('message', ({ detail }) => { if (detail.topic === topic) { resolve() } })
      })
      await a.services.realm.announce()
      await heard
      expect(received).to.have.lengthOf(before)
      expect(a.services.realm.members().map(m => m.peerId.toString())).to.deep.equal([b.peerId.toString()])
    })

    it('not exclusive: a plain outsider gets sealed announcements of every member, forwarded ones too, with no address in them', async () => {
      const { a, b, topic, outsider, received } = await membersAndListener(false)
      await connect(outsider, a)
      await subscribed(a, outsider.peerId, topic)

      const fromB = new Promise<void>(resolve => {
        outsider.services.pubsub.addEventListener('message', ({ detail }) => { if (detail.topic === topic && detail.type === 'signed' && detail.from.equals(b.peerId)) { resolve() } })
      })
      await b.services.realm.announce()
      // b never met the outsider: a forwarded it
      await fromB
      expect(outsider.getConnections(b.peerId)).to.be.empty()
      for (const { data } of received) {
        expectSealed(data, [a, b])
      }
      expect(a.services.realm.members().map(m => m.peerId.toString())).to.deep.equal([b.peerId.toString()])
      expect(a.getConnections(outsider.peerId), 'not exclusive: it stays').to.not.be.empty()
    })

    it('with gossipsub wrapped in membersOnly, an outsider on a non-exclusive realm gets no announcement at all; members still converge', async () => {
      const opts = { services: { pubsub: membersOnly(gossipsub({ heartbeatInterval: 100 })) } }
      const [a, b] = await Promise.all([createMember({ authTimeout: AUTH_TIMEOUT, exclusive: false }, opts), createMember({ authTimeout: AUTH_TIMEOUT, exclusive: false }, opts)])
      nodes.push(a, b)
      await connect(a, b)
      await Promise.all([joined(a, b.peerId), joined(b, a.peerId)])
      const topic = topicOf(a)
      await subscribed(b, a.peerId, topic)
      const { outsider, received } = await createListeningOutsider(topic)
      nodes.push(outsider)
      const denied = a.services.realm.stats().accessDenied
      const toA = await connect(outsider, a)
      // a stream of our own on gossipsub's protocol ends when a's gate gives up on the outsider (authTimeout): its gossipsub streams got the same verdict
      await ended(await toA.newStream('/meshsub/1.1.0'))
      expect(a.services.realm.stats().accessDenied).to.be.above(denied)
      const heard = new Promise<void>(resolve => {
        b.services.pubsub.addEventListener('message', ({ detail }) => { if (detail.topic === topic) { resolve() } })
      })
      await a.services.realm.announce()
      await heard
      expect(received).to.be.empty()
      expect(a.services.pubsub.getSubscribers(topic).map(String)).to.not.include(outsider.peerId.toString())
      expect(a.getConnections(outsider.peerId), 'not exclusive: it stays').to.not.be.empty()
    })
  })
})
