import { connect, createFakeClock, createNode, disconnect, expectNoLeaks, onceEvent, stopAll } from '@holdfast/test-utils'
import { memory } from '@libp2p/memory'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { cleanupBroadcaster } from '../src/index.ts'
import { abortReason, expectRefused, junkPeers, realNodes, restartA, settled, stranger, transports, untilAborted, withBroadcaster } from './helpers.ts'
import type { Node } from './helpers.ts'
import type { CleanupBroadcaster, CleanupReport } from '@holdfast/interface'
import type { FakeClock } from '@holdfast/test-utils'

for (const transport of transports) {
  describe(`cleanup-broadcaster: work bound to a peer over ${transport}`, () => {
    const nodes = realNodes(transport)

    describe('dial cancellation checkpoints', () => {
      /** A's broadcaster with a 5 s closing window on a fake clock, B just cleaned up: B is closing */
      async function closingPeerB (): Promise<{ broadcaster: CleanupBroadcaster, clock: FakeClock }> {
        const clock = createFakeClock()
        const a = await restartA(nodes, transport, { closingWindowMs: 5_000, clock })
        const { broadcaster } = a.services
        await connect(a, nodes.b)
        await broadcaster.cleanup(nodes.b.peerId, 'manual')
        expect(broadcaster.isClosing(nodes.b.peerId)).to.be.true()
        return { broadcaster, clock }
      }

      it('1: before dialing, a closing peer fails at once', async () => {
        const { broadcaster, clock } = await closingPeerB()
        const { a, b } = nodes
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
        const { a, b } = nodes
        // an address without /p2p/ names no peer, so only checkpoint 3 can see who it reached
        const bare = b.getMultiaddrs().map(ma => multiaddr(ma.toString().replace(/\/p2p\/[^/]+$/, '')))
        const closed = onceEvent(a, 'connection:close', conn => conn.remotePeer.equals(b.peerId))
        await expect(broadcaster.dial(bare)).to.eventually.be.rejected.with.property('name', 'ConnectionClosedError')
        await closed
        expect(a.getConnections(b.peerId)).to.have.lengthOf(0)
        clock.tick(5_000)
      })
    })

    it('a cleanup aborts the signal of work that also has a caller signal or a timeout, so its I/O stops too', async () => {
      const { a, b } = nodes
      const { broadcaster } = a.services
      await connect(a, b)
      const signals: AbortSignal[] = []
      const caller = new AbortController()
      const withCaller = broadcaster.track(b.peerId, async (signal) => { signals.push(signal); return untilAborted(signal) }, { signal: caller.signal })
      const withTimeout = broadcaster.track(b.peerId, async (signal) => { signals.push(signal); return untilAborted(signal) }, { timeout: 60_000 })
      await broadcaster.cleanup(b.peerId, 'manual')
      await expect(withCaller).to.eventually.be.rejected.with.property('name', 'ConnectionClosedError')
      await expect(withTimeout).to.eventually.be.rejected.with.property('name', 'ConnectionClosedError')
      for (const signal of signals) {
        expect(await abortReason(signal)).to.have.property('name', 'ConnectionClosedError')
      }
      expect(caller.signal.aborted).to.be.false()
      expect(broadcaster.internalSizes()).to.include({ pending: 0, timers: 0 })
    })

    it('a request that connects to the peer itself is bound to the connection it opened', async () => {
      const { a, b } = nodes
      const { broadcaster } = a.services
      const connection = await broadcaster.track(b.peerId, async (signal) => a.dial(b.getMultiaddrs(), { signal }))
      expect(connection.remotePeer.equals(b.peerId)).to.be.true()
      // the entry outlives the request: the connection holds it now, and the peer's signal is live
      expect(broadcaster.internalSizes()).to.include({ peers: 1, connections: 1, pending: 0 })
      const signal = broadcaster.signalFor(b.peerId)
      expect(signal.aborted).to.be.false()

      const next = settled([broadcaster.track(b.peerId, untilAborted)])
      await disconnect(a, b)
      expect(await next).to.deep.equal(['ConnectionClosedError'])
      expect((await abortReason(signal) as Error).name).to.equal('ConnectionClosedError')
      expect(broadcaster.internalSizes()).to.include({ peers: 0, connections: 0, controllers: 0 })
    })

    it('bad targets, work and options: typed errors, nothing changed; null options are no options', async () => {
      const { a, b } = nodes
      const { broadcaster } = a.services
      const connection = await connect(a, b)
      const work = settled([broadcaster.track(b.peerId, untilAborted), broadcaster.track(connection, untilAborted)])
      const rows: Array<[string, () => unknown]> = []
      for (const junk of junkPeers) {
        rows.push(
          [`track(${String(junk)})`, async () => broadcaster.track(junk as any, async () => 1)],
          [`signalFor(${String(junk)})`, () => broadcaster.signalFor(junk as any)],
          [`isClosing(${String(junk)})`, () => broadcaster.isClosing(junk as any)]
        )
        if (junk !== undefined) {
          rows.push([`pending(${String(junk)})`, () => broadcaster.pending(junk as any)])
        }
      }
      for (const target of [undefined, 'QmPeer', [], ['not a multiaddr']]) {
        rows.push([`dial(${String(target)})`, async () => broadcaster.dial(target as any)])
      }
      for (const timeout of [-1, 0, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '10', null]) {
        rows.push([`track with timeout ${String(timeout)}`, async () => broadcaster.track(b.peerId, untilAborted, { timeout: timeout as any })])
      }
      rows.push(
        ['track with work that is no function', async () => broadcaster.track(b.peerId, 'work' as any)],
        ['track with a signal that is no AbortSignal', async () => broadcaster.track(b.peerId, untilAborted, { signal: { aborted: false } as any })],
        ['track with string options', async () => broadcaster.track(b.peerId, untilAborted, 'soon' as any)],
        ['dial with a signal that is no AbortSignal', async () => broadcaster.dial(b.peerId, { signal: 'abort' as any })],
        ['dial with numeric options', async () => broadcaster.dial(b.peerId, 42 as any)]
      )
      for (const [what, call] of rows) {
        await expectRefused(broadcaster, 'InvalidArgumentError', call, what)
      }

      expect(await broadcaster.track(b.peerId, async () => 'done', null as any)).to.equal('done')
      expect((await broadcaster.dial(b.peerId, null as any)).id).to.equal(connection.id)
      expect(broadcaster.pending()).to.equal(2)
      await disconnect(a, b)
      expect(await work).to.deep.equal(['ConnectionClosedError', 'ConnectionClosedError'])
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

describe('cleanup-broadcaster: work on a peer that is not connected (fake clock)', () => {
  const clock = createFakeClock()
  let node: Node
  let broadcaster: CleanupBroadcaster

  beforeEach(async () => {
    node = await withBroadcaster('memory', { clock })
    broadcaster = node.services.broadcaster
  })

  afterEach(async () => {
    // nothing waits on a peer that has no connection and nothing in flight
    expect(broadcaster.internalSizes()).to.include({ peers: 0, pending: 0, controllers: 0, timers: 0, listeners: 0 })
    await stopAll([node])
    expectNoLeaks(broadcaster)
  })

  it('times out with TimeoutError, aborts the work signal and clears its timer', async () => {
    let workSignal: AbortSignal | undefined
    const tracked = broadcaster.track(stranger, async (signal) => {
      workSignal = signal
      return new Promise(() => {})
    }, { timeout: 500 })
    expect(broadcaster.internalSizes()).to.include({ timers: 1, pending: 1 })
    clock.tick(500)
    await expect(tracked).to.eventually.be.rejected.with.property('name', 'TimeoutError')
    expect(workSignal?.aborted).to.be.true()
  })

  it('the caller aborting rejects with AbortError', async () => {
    const controller = new AbortController()
    const tracked = broadcaster.track(stranger, async () => new Promise(() => {}), { signal: controller.signal, timeout: 1_000 })
    controller.abort()
    await expect(tracked).to.eventually.be.rejected.with.property('name', 'AbortError')
  })

  it('resolves with the work value and drops the entry', async () => {
    expect(await broadcaster.track(stranger, async () => 42, { timeout: 1_000 })).to.equal(42)
  })

  it('work that throws synchronously or an aborted caller signal rejects without leftovers', async () => {
    await expect(broadcaster.track(stranger, () => { throw new Error('sync boom') })).to.eventually.be.rejected.with.property('message', 'sync boom')
    await expect(broadcaster.track(stranger, async () => 1, { signal: AbortSignal.abort() })).to.eventually.be.rejected.with.property('name', 'AbortError')
  })

  it('an entry lives exactly as long as its work, and a signal handed out meanwhile aborts when it goes', async () => {
    let finish: (value: string) => void = () => {}
    const tracked = broadcaster.track(stranger, async () => new Promise<string>(resolve => { finish = resolve }))
    expect(broadcaster.internalSizes()).to.include({ peers: 1, pending: 1 })
    const signal = broadcaster.signalFor(stranger)
    expect(signal.aborted).to.be.false()

    finish('answer')
    expect(await tracked).to.equal('answer')
    const reason = await abortReason(signal) as Error & { reason?: string }
    expect(reason).to.have.property('name', 'ConnectionClosedError')
    expect(reason.reason).to.equal('not-connected')
    expect(broadcaster.signalFor(stranger).aborted).to.be.true()
  })

  it('work nothing else would end is ended by the peer\'s cleanup', async () => {
    const tracked = settled([broadcaster.track(stranger, untilAborted), broadcaster.track(stranger, untilAborted)])
    const report = await broadcaster.cleanup(stranger, 'manual')
    expect(report).to.include({ pendingRejected: 2, connectionsClosed: 0 })
    expect(await tracked).to.deep.equal(['ConnectionClosedError', 'ConnectionClosedError'])
  })

  it('signalFor of a peer with nothing open and nothing in flight is aborted and creates nothing', () => {
    const before = broadcaster.internalSizes()
    const signal = broadcaster.signalFor(stranger)
    expect(signal.aborted).to.be.true()
    expect(signal.reason).to.have.property('name', 'ConnectionClosedError')
    expect(broadcaster.isClosing(stranger)).to.be.false()
    expect(broadcaster.pending(stranger)).to.equal(0)
    expect(broadcaster.internalSizes()).to.deep.equal(before)
  })

  it('a dial that fails leaves nothing, and the peer signal taken during it aborts', async () => {
    const nobody = multiaddr(`/memory/holdfast-nobody-listens-here/p2p/${stranger}`)
    const dialing = settled([broadcaster.dial(nobody)])
    const signal = broadcaster.signalFor(stranger)
    expect(signal.aborted).to.be.false()
    expect(broadcaster.pending(stranger)).to.equal(1)
    expect((await dialing)[0]).to.not.equal('fulfilled')
    expect(await abortReason(signal)).to.have.property('name', 'ConnectionClosedError')
  })
})
