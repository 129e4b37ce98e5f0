import { connect, disconnect } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { expectRefused, nextEvent, realNodes, settled, stranger, transports, untilAborted } from './helpers.ts'

for (const transport of transports) {
  describe(`cleanup-broadcaster: the cleanup chain over ${transport}`, () => {
    const nodes = realNodes(transport)

    it('runs the cleanup layers top-down, a failing layer does not stop the next, and reports it all', async () => {
      const { a, b } = nodes
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
      const { a, b } = nodes
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
      const { a, b, c } = nodes
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
      const { a, b, c } = nodes
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

    it('bad layers, peers and reasons: typed errors, nothing changed', async () => {
      const { a, b } = nodes
      const { broadcaster } = a.services
      await connect(a, b)
      const work = settled([broadcaster.track(b.peerId, untilAborted)])
      let ran = 0
      broadcaster.onCleanup('counted', 1, () => { ran++ })
      const rows: Array<[string, () => unknown]> = [
        ['onCleanup with an empty layer name', () => broadcaster.onCleanup('', 1, () => {})],
        ['onCleanup with a NaN order', () => broadcaster.onCleanup('x', Number.NaN, () => {})],
        ['onCleanup with a non-function', () => broadcaster.onCleanup('x', 1, 'fn' as any)],
        ['cleanup of null', async () => broadcaster.cleanup(null as any, 'manual')],
        ['cleanup of a peer ID string', async () => broadcaster.cleanup(b.peerId.toString() as any, 'manual')],
        ['cleanup without a reason', async () => broadcaster.cleanup(b.peerId, '' as any)],
        ['closeAll without a reason', async () => broadcaster.closeAll(undefined as any)]
      ]
      for (const [what, call] of rows) {
        await expectRefused(broadcaster, 'InvalidArgumentError', call, what)
      }
      expect(broadcaster.isClosing(b.peerId)).to.be.false()
      expect(broadcaster.pending(b.peerId)).to.equal(1)

      // the one layer that was added still runs, alone
      const cleaned = nextEvent(broadcaster, 'peer:cleaned')
      await disconnect(a, b)
      expect((await cleaned).report.layers.map(l => l.layer)).to.deep.equal(['counted'])
      expect(ran).to.equal(1)
      expect(await work).to.deep.equal(['ConnectionClosedError'])
    })

    it('a peer that is not connected is cleaned up too, and leaves nothing behind', async () => {
      const { broadcaster } = nodes.a.services
      const work = settled([broadcaster.track(stranger, untilAborted)])
      const report = await broadcaster.cleanup(stranger, 'manual')
      expect(report).to.include({ pendingRejected: 1, connectionsClosed: 0 })
      expect(await work).to.deep.equal(['ConnectionClosedError'])
      expect(broadcaster.internalSizes()).to.include({ peers: 0, controllers: 0, closing: 0 })
    })
  })
}
