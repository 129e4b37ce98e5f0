/**
 * The realm as an access boundary, proved with real nodes. An outsider is a plain libp2p node
 * (no realm service, no PSK) on 127.0.0.1; each test asserts something it could do without the
 * boundary. Disconnect times are printed (`[boundary]` lines) with their p50/p95 at the end.
 */

import { connect, createFakeClock, createNode, onceEvent, stopAndExpectNoLeaks } from '@holdfast/test-utils'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { FaultTolerance } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { deriveKeys } from '../src/index.ts'
import { createMember, ended, onceRealm, PSK, watchNext } from './fixtures.ts'
import type { RealmNode } from './fixtures.ts'
import type { NodeOptions } from '@holdfast/test-utils'
import type { Connection, Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** ms; small, so each verdict takes half a second */
const AUTH_TIMEOUT = 500
/** ms an outsider may outlast `authTimeout`: the abort still has to reach it through its transport */
const MARGIN = 1_000
/** ms a measured hold may fall short of `authTimeout`: each end stamps the open at a slightly different moment, and timers have millisecond granularity */
const EARLY = 50

const REALM_ID = deriveKeys(PSK).realmId
const AUTH_PROTOCOL = `/holdfast/realm/${REALM_ID}/auth/1.0.0`

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

describe('the realm as an access boundary', () => {
  /** every node of the test, stopped and checked for leaks after it */
  const nodes: Array<Libp2p<any>> = []

  afterEach(async () => {
    await stopAndExpectNoLeaks(nodes.splice(0), 'realm')
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
})
