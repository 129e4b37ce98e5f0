import { connect, disconnect, onceEvent } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { nextEvent, realNodes, restartA, settled, transports, untilAborted } from './helpers.ts'

for (const transport of transports) {
  describe(`cleanup-broadcaster on real nodes over ${transport}`, () => {
    const nodes = realNodes(transport)

    it('the last connection closing rejects 1,000 tracked promises of that peer and none of another peer', async () => {
      const { a, b, c } = nodes
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
      const { a, b } = nodes
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
      const { a, b } = nodes
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
      const a = await restartA(nodes, transport, { replaceConnections: false })
      const { b } = nodes
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
      const { a, b } = nodes
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
  })
}
