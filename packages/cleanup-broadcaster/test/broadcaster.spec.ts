import { connect, createFakeClock, createNode, disconnect, expectNoLeaks, onceEvent, stopAll } from '@holdfast/test-utils'
import { memory } from '@libp2p/memory'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { isNode } from 'wherearewe'
import { cleanupBroadcaster } from '../src/index.ts'
import type { CleanupBroadcasterInit } from '../src/index.ts'
import type { CleanupBroadcaster, CleanupReport, HoldfastEvent, HoldfastEvents, HoldfastEventType } from '@holdfast/interface'
import type { FakeClock, TransportKind } from '@holdfast/test-utils'
import type { Libp2p } from '@libp2p/interface'

type Node = Libp2p<{ broadcaster: CleanupBroadcaster }>

/** Work that only ends when its signal aborts, rejecting with the signal's reason */
const untilAborted = async (signal: AbortSignal): Promise<never> => new Promise((_resolve, reject) => {
  signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
})

/** Collects rejection names and never lets a rejection go unhandled */
function settled (promises: Array<Promise<unknown>>): Promise<Array<string | 'fulfilled'>> {
  return Promise.all(promises.map(async p => p.then(() => 'fulfilled' as const, (err: Error) => err.name)))
}

/** Resolves with the next event of that type the broadcaster publishes */
async function nextEvent<K extends HoldfastEventType> (broadcaster: CleanupBroadcaster, type: K, filter: (detail: HoldfastEvents[K]) => boolean = () => true): Promise<HoldfastEvents[K]> {
  return new Promise(resolve => {
    const unsubscribe = broadcaster.subscribe(type, (event: HoldfastEvent<K>) => {
      if (filter(event.detail)) {
        unsubscribe()
        resolve(event.detail)
      }
    })
  })
}

async function withBroadcaster (transport: TransportKind, init?: CleanupBroadcasterInit): Promise<Node> {
  return createNode({ transport, services: { broadcaster: cleanupBroadcaster(init) } }) as unknown as Promise<Node>
}

// TCP on 127.0.0.1 in Node; browsers have no TCP, so there the memory transport alone
const transports: TransportKind[] = isNode ? ['memory', 'tcp'] : ['memory']

for (const transport of transports) {
  describe(`cleanup-broadcaster on real nodes over ${transport}`, () => {
    let a: Node
    let b: Libp2p
    let c: Libp2p

    beforeEach(async () => {
      a = await withBroadcaster(transport)
      b = await createNode({ transport })
      c = await createNode({ transport })
    })

    afterEach(async () => {
      // after every scenario: nothing left per peer except what the open connections need
      const sizes = a.services.broadcaster.internalSizes()
      expect(sizes.pending).to.equal(0)
      expect(sizes.timers).to.equal(0)
      expect(sizes.listeners).to.equal(0)
      expect(sizes.waiters).to.equal(0)
      await stopAll([a, b, c])
      expectNoLeaks(a.services.broadcaster)
    })

    it('the last connection closing rejects 1,000 tracked promises of that peer and none of another peer', async () => {
      const { broadcaster } = a.services
      await connect(a, b)
      await connect(a, c)

      const ofB = Array.from({ length: 1000 }, async () => broadcaster.track(b.peerId, untilAborted))
      const outcomesB = settled(ofB)
      let cSettled = 0
      const ofC = Array.from({ length: 10 }, async () => broadcaster.track(c.peerId, untilAborted).finally(() => { cSettled++ }))
      expect(broadcaster.pending(b.peerId)).to.equal(1000)

      const cleaned = nextEvent(broadcaster, 'peer:cleaned', d => d.peer.equals(b.peerId))
      await disconnect(a, b)

      expect(await outcomesB).to.deep.equal(Array(1000).fill('ConnectionClosedError'))
      const { report } = await cleaned
      expect(report.pendingRejected).to.equal(1000)
      expect(report.reason).to.equal('peer-disconnected')
      expect(cSettled).to.equal(0)
      expect(broadcaster.pending(c.peerId)).to.equal(10)
      expect(broadcaster.pending(b.peerId)).to.equal(0)

      // C's work still ends the normal way: when C goes
      const outcomesC = settled(ofC)
      await disconnect(a, c)
      expect(await outcomesC).to.deep.equal(Array(10).fill('ConnectionClosedError'))
    })

    it('every disconnect of the same peer cleans it again, and no entry outlives the peer', async () => {
      const { broadcaster } = a.services
      const peerB = b.peerId
      for (let round = 1; round <= 3; round++) {
        await connect(a, b)
        const outcomes = settled(Array.from({ length: 10 }, async () => broadcaster.track(peerB, untilAborted)))
        const cleaned = nextEvent(broadcaster, 'peer:cleaned')
        await disconnect(a, b)
        expect(await outcomes).to.deep.equal(Array(10).fill('ConnectionClosedError'), `round ${round}`)
        expect((await cleaned).report.pendingRejected).to.equal(10)
        expect(broadcaster.internalSizes()).to.include({ peers: 0, connections: 0, pending: 0, closing: 0 })
      }
    })

    it('rejects synchronously in the tick of the close event, not at the work timeout', async () => {
      const { broadcaster } = a.services
      await connect(a, b)
      let rejectedBeforeNextTick = 0
      const tracked = Array.from({ length: 100 }, async () => broadcaster.track(b.peerId, async () => new Promise(() => {}), { timeout: 30_000 })
        .catch(() => { rejectedBeforeNextTick++ }))
      let countAtClose = -1
      a.addEventListener('connection:close', () => {
        // runs after the broadcaster's listener: promise callbacks have not run yet, but the
        // rejections must already be queued, so the next microtask checkpoint sees them all
        queueMicrotask(() => { queueMicrotask(() => { countAtClose = rejectedBeforeNextTick }) })
      }, { once: true })
      await disconnect(a, b)
      await Promise.all(tracked)
      expect(countAtClose).to.equal(100)
    })

    it('a connection closing while another to the same peer remains rejects only the work bound to it', async () => {
      // two outbound connections of one path kind would replace each other: keep both here
      await a.stop()
      a = await withBroadcaster(transport, { replaceConnections: false })
      const { broadcaster } = a.services
      const one = await connect(a, b)
      const two = await connect(a, b, { force: true })
      expect(one.id).to.not.equal(two.id)

      const onOne = settled(Array.from({ length: 5 }, async () => broadcaster.track(one, untilAborted)))
      let peerSettled = 0
      let twoSettled = 0
      const onPeer = broadcaster.track(b.peerId, untilAborted).finally(() => { peerSettled++ })
      const onTwo = broadcaster.track(two, untilAborted).finally(() => { twoSettled++ })
      const oneSignal = broadcaster.signalFor(one)
      const peerSignal = broadcaster.signalFor(b.peerId)

      const closed = nextEvent(broadcaster, 'connection:closed', d => d.connectionId === one.id)
      await one.close()
      await closed

      expect(await onOne).to.deep.equal(Array(5).fill('ConnectionClosedError'))
      expect(oneSignal.aborted).to.be.true()
      expect(peerSignal.aborted).to.be.false()
      expect(peerSettled).to.equal(0)
      expect(twoSettled).to.equal(0)
      expect(broadcaster.isClosing(b.peerId)).to.be.false()

      const rest = settled([onPeer, onTwo])
      await disconnect(a, b)
      expect(await rest).to.deep.equal(['ConnectionClosedError', 'ConnectionClosedError'])
    })

    it('a newer connection of the same path kind replaces the older one and fails only its work', async () => {
      const { broadcaster } = a.services
      const older = await connect(a, b)
      const onOlder = settled([broadcaster.track(older, untilAborted)])
      let peerWorkSettled = false
      const onPeer = broadcaster.track(b.peerId, untilAborted).finally(() => { peerWorkSettled = true })

      const replaced = nextEvent(broadcaster, 'connection:replaced')
      const olderClosed = onceEvent(a, 'connection:close', conn => conn.id === older.id)
      const newer = await connect(a, b, { force: true })

      expect(await replaced).to.deep.include({ oldConnectionId: older.id, newConnectionId: newer.id })
      expect(await onOlder).to.deep.equal(['ConnectionClosedError'])
      await olderClosed
      expect(a.getConnections(b.peerId).map(conn => conn.id)).to.deep.equal([newer.id])
      expect(peerWorkSettled).to.be.false()

      const rest = settled([onPeer])
      await disconnect(a, b)
      expect(await rest).to.deep.equal(['ConnectionClosedError'])
    })

    it('runs the cleanup layers top-down, a failing layer does not stop the next, and reports it all', async () => {
      const { broadcaster } = a.services
      const order: string[] = []
      broadcaster.onCleanup('transport', 100, () => { order.push('transport') })
      broadcaster.onCleanup('app', 1, async () => { order.push('app') })
      broadcaster.onCleanup('cache', 50, () => { order.push('cache'); throw new Error('cache is broken') })
      const removed = broadcaster.onCleanup('removed', 10, () => { order.push('removed') })
      removed()

      await connect(a, b)
      const cleaned = nextEvent(broadcaster, 'peer:cleaned')
      await disconnect(a, b)
      const { report } = await cleaned

      expect(order).to.deep.equal(['app', 'cache', 'transport'])
      expect(report.layers.map(l => [l.layer, l.ok])).to.deep.equal([['app', true], ['cache', false], ['transport', true]])
      expect(report.layers[1].error).to.equal('cache is broken')
      expect(report.durationMs).to.be.at.least(0)
    })

    it('cleanup(peer) closes the connections and fails new work while it runs', async () => {
      const { broadcaster } = a.services
      await connect(a, b)
      const work = settled([broadcaster.track(b.peerId, untilAborted)])
      let release: () => void = () => {}
      broadcaster.onCleanup('slow-layer', 1, async () => new Promise<void>(resolve => { release = resolve }))

      const gone = nextEvent(broadcaster, 'peer:gone')
      const cleaning = broadcaster.cleanup(b.peerId, 'user-logout')
      expect(broadcaster.isClosing(b.peerId)).to.be.true()
      expect(await work).to.deep.equal(['ConnectionClosedError'])
      await expect(broadcaster.track(b.peerId, untilAborted)).to.eventually.be.rejected.with.property('name', 'PeerClosingError')
      await expect(broadcaster.dial(b.peerId)).to.eventually.be.rejected.with.property('name', 'PeerClosingError')
      expect(broadcaster.signalFor(b.peerId).aborted).to.be.true()

      release()
      const report = await cleaning
      await gone
      expect(report).to.include({ reason: 'user-logout', pendingRejected: 1, connectionsClosed: 1 })
      expect(a.getConnections(b.peerId)).to.have.lengthOf(0)
      expect(broadcaster.isClosing(b.peerId)).to.be.false()
    })

    it('closeAll cleans every peer and closes every connection', async () => {
      const { broadcaster } = a.services
      await connect(a, b)
      await connect(a, c)
      const work = settled([broadcaster.track(b.peerId, untilAborted), broadcaster.track(c.peerId, untilAborted)])
      const reports = await broadcaster.closeAll('app-terminating')
      expect(await work).to.deep.equal(['ConnectionClosedError', 'ConnectionClosedError'])
      expect(reports.map(r => r.peer.toString()).sort()).to.deep.equal([b.peerId.toString(), c.peerId.toString()].sort())
      expect(reports.every(r => r.reason === 'app-terminating' && r.connectionsClosed === 1)).to.be.true()
      expect(a.getConnections()).to.have.lengthOf(0)
    })

    it('cleans up a peer the reconnector gave up on, or whose restart failed', async () => {
      const { broadcaster } = a.services
      await connect(a, b)
      await connect(a, c)
      const onB = settled([broadcaster.track(b.peerId, untilAborted)])
      const onC = settled([broadcaster.track(c.peerId, untilAborted)])

      const cleanedB = nextEvent(broadcaster, 'peer:cleaned', d => d.peer.equals(b.peerId))
      broadcaster.publish('peer:removed', { peer: b.peerId, reason: 'attempts-exhausted' })
      expect((await cleanedB).reason).to.equal('reconnect-gave-up')
      expect(await onB).to.deep.equal(['ConnectionClosedError'])

      broadcaster.publish('restart:completed', { peer: c.peerId, success: true })
      expect(broadcaster.pending(c.peerId)).to.equal(1)
      const cleanedC = nextEvent(broadcaster, 'peer:cleaned', d => d.peer.equals(c.peerId))
      broadcaster.publish('restart:completed', { peer: c.peerId, success: false, error: 'upgrade failed' })
      expect((await cleanedC).reason).to.equal('restart-failed')
      expect(await onC).to.deep.equal(['ConnectionClosedError'])
    })

    describe('dial cancellation checkpoints', () => {
      /** A's broadcaster with a 5 s closing window on a fake clock, B just cleaned up: B is closing */
      async function closingPeerB (): Promise<{ broadcaster: CleanupBroadcaster, clock: FakeClock }> {
        const clock = createFakeClock()
        await a.stop()
        a = await withBroadcaster(transport, { closingWindowMs: 5_000, clock })
        const { broadcaster } = a.services
        await connect(a, b)
        await broadcaster.cleanup(b.peerId, 'manual')
        expect(broadcaster.isClosing(b.peerId)).to.be.true()
        return { broadcaster, clock }
      }

      it('1: before dialing, a closing peer fails at once', async () => {
        const { broadcaster, clock } = await closingPeerB()
        await expect(broadcaster.dial(b.peerId)).to.eventually.be.rejected.with.property('name', 'PeerClosingError')
        await expect(broadcaster.dial(b.getMultiaddrs())).to.eventually.be.rejected.with.property('name', 'PeerClosingError')
        expect(a.getConnections(b.peerId)).to.have.lengthOf(0)
        clock.tick(5_000)
        expect(broadcaster.isClosing(b.peerId)).to.be.false()
        const connection = await broadcaster.dial(b.peerId)
        expect(connection.remotePeer.equals(b.peerId)).to.be.true()
      })

      it('3: after the connection opens, a dial the cleanup cancelled meanwhile closes the new connection', async () => {
        const { broadcaster, clock } = await closingPeerB()
        // an address without /p2p/ names no peer, so only checkpoint 3 can see who it reached
        const bare = b.getMultiaddrs().map(ma => multiaddr(ma.toString().replace(/\/p2p\/[^/]+$/, '')))
        const closed = onceEvent(a, 'connection:close', conn => conn.remotePeer.equals(b.peerId))
        await expect(broadcaster.dial(bare)).to.eventually.be.rejected.with.property('name', 'ConnectionClosedError')
        await closed
        expect(a.getConnections(b.peerId)).to.have.lengthOf(0)
        clock.tick(5_000)
      })
    })

    describe('readiness', () => {
      it('whenReady resolves once every condition is marked, and peer:ready is published', async () => {
        const { broadcaster } = a.services
        broadcaster.setReadyConditions(['connected', 'identified', 'realm-auth'])
        const ready = broadcaster.whenReady(b.peerId)
        const published = nextEvent(broadcaster, 'peer:ready')
        await connect(a, b)
        expect(broadcaster.internalSizes().waiters).to.equal(1)
        broadcaster.markReady(b.peerId, 'realm-auth')
        await ready
        expect((await published).conditions).to.deep.equal(['connected', 'identified', 'realm-auth'])
        // already ready: at once
        await broadcaster.whenReady(b.peerId)
      })

      it('whenReady rejects with ConnectionClosedError when the peer goes first', async () => {
        const { broadcaster } = a.services
        broadcaster.setReadyConditions(['connected', 'realm-auth'])
        await connect(a, b)
        const ready = settled([broadcaster.whenReady(b.peerId)])
        await disconnect(a, b)
        expect(await ready).to.deep.equal(['ConnectionClosedError'])
      })

      it('whenReady rejects with TimeoutError on timeout (fake clock)', async () => {
        const clock = createFakeClock()
        await a.stop()
        a = await withBroadcaster(transport, { clock, readyConditions: ['connected', 'realm-auth'] })
        const { broadcaster } = a.services
        await connect(a, b)
        const ready = settled([broadcaster.whenReady(b.peerId, { timeout: 1_000 })])
        clock.tick(999)
        expect(broadcaster.internalSizes().waiters).to.equal(1)
        clock.tick(1)
        expect(await ready).to.deep.equal(['TimeoutError'])
        expect(clock.countTimers()).to.equal(0)
      })

      it('marking a peer that is not connected changes nothing', async () => {
        const { broadcaster } = a.services
        broadcaster.markReady(b.peerId, 'realm-auth')
        expect(broadcaster.internalSizes().peers).to.equal(0)
      })
    })
  })
}

describe('cleanup-broadcaster: dial cancelled while dialing (memory transport with latency)', () => {
  it('2: a cleanup during the dial rejects it at once with ConnectionClosedError', async () => {
    const a = await createNode({ services: { broadcaster: cleanupBroadcaster() }, config: { transports: [memory({ latency: 200 })] } }) as unknown as Node
    const b = await createNode({ config: { transports: [memory({ latency: 200 })] } })
    try {
      const { broadcaster } = a.services
      const dialing = settled([broadcaster.dial(b.getMultiaddrs())])
      expect(broadcaster.pending(b.peerId)).to.equal(1)
      const report: CleanupReport = await broadcaster.cleanup(b.peerId, 'manual')
      expect(report.dialsAborted).to.equal(1)
      expect(await dialing).to.deep.equal(['ConnectionClosedError'])
      expect(broadcaster.pending()).to.equal(0)
    } finally {
      await stopAll([a, b])
    }
    expectNoLeaks(a.services.broadcaster)
  })
})
