import { connect, createFakeClock, disconnect } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { expectRefused, nextEvent, realNodes, restartA, settled, stranger, transports } from './helpers.ts'
import type { CleanupBroadcaster } from '@holdfast/interface'

for (const transport of transports) {
  describe(`cleanup-broadcaster: readiness over ${transport}`, () => {
    const nodes = realNodes(transport)

    /** A connected to B with `realm-auth` still to be marked, and one `whenReady(B)` waiting */
    async function waitingForB (): Promise<{ broadcaster: CleanupBroadcaster, ready: Promise<string[]> }> {
      const { a, b } = nodes
      const { broadcaster } = a.services
      broadcaster.setReadyConditions(['connected', 'realm-auth'])
      await connect(a, b)
      return { broadcaster, ready: settled([broadcaster.whenReady(b.peerId)]) }
    }

    it('whenReady resolves once every condition is marked, and peer:ready is published', async () => {
      const { a, b } = nodes
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
      const { ready } = await waitingForB()
      await disconnect(nodes.a, nodes.b)
      expect(await ready).to.deep.equal(['ConnectionClosedError'])
    })

    it('whenReady rejects with TimeoutError on timeout (fake clock)', async () => {
      const clock = createFakeClock()
      const a = await restartA(nodes, transport, { clock, readyConditions: ['connected', 'realm-auth'] })
      const { b } = nodes
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
      const { broadcaster } = nodes.a.services
      broadcaster.markReady(nodes.b.peerId, 'realm-auth')
      expect(broadcaster.internalSizes().peers).to.equal(0)
    })

    it('waiting for a peer that is not connected ends with its timeout, its signal or its cleanup, and leaves nothing', async () => {
      const clock = createFakeClock()
      const { broadcaster } = (await restartA(nodes, transport, { clock })).services
      const timedOut = settled([broadcaster.whenReady(stranger, { timeout: 1_000 })])
      const controller = new AbortController()
      const aborted = settled([broadcaster.whenReady(stranger, { signal: controller.signal })])
      const cleanedUp = settled([broadcaster.whenReady(stranger)])
      expect(broadcaster.internalSizes()).to.include({ peers: 1, waiters: 3, timers: 1, listeners: 1 })

      clock.tick(1_000)
      controller.abort()
      await broadcaster.cleanup(stranger, 'manual')
      expect(await timedOut).to.deep.equal(['TimeoutError'])
      expect(await aborted).to.deep.equal(['AbortError'])
      expect(await cleanedUp).to.deep.equal(['ConnectionClosedError'])
      expect(broadcaster.internalSizes()).to.include({ peers: 0, waiters: 0, timers: 0, listeners: 0, controllers: 0 })
    })

    it('bad peers, conditions and options: typed errors, nothing changed; null options are no options', async () => {
      const { broadcaster, ready: waiting } = await waitingForB()
      const { b } = nodes
      const rows: Array<[string, () => unknown]> = [
        ['whenReady of null', async () => broadcaster.whenReady(null as any)],
        ['whenReady of a peer ID string', async () => broadcaster.whenReady(b.peerId.toString() as any)],
        ['whenReady with a zero timeout', async () => broadcaster.whenReady(b.peerId, { timeout: 0 })],
        ['whenReady with a 2^31 ms timeout', async () => broadcaster.whenReady(b.peerId, { timeout: 2 ** 31 })],
        ['whenReady with a string timeout', async () => broadcaster.whenReady(b.peerId, { timeout: '10' as any })],
        ['whenReady with a signal that is no AbortSignal', async () => broadcaster.whenReady(b.peerId, { signal: { aborted: false } as any })],
        ['whenReady with string options', async () => broadcaster.whenReady(b.peerId, 'soon' as any)],
        ['markReady of null', () => { broadcaster.markReady(null as any, 'realm-auth') }],
        ['markReady with an empty condition', () => { broadcaster.markReady(b.peerId, '') }],
        ['setReadyConditions([])', () => { broadcaster.setReadyConditions([]) }],
        ['setReadyConditions with an empty name', () => { broadcaster.setReadyConditions(['ok', '']) }],
        ['setReadyConditions with a string', () => { broadcaster.setReadyConditions('connected' as any) }]
      ]
      for (const [what, call] of rows) {
        await expectRefused(broadcaster, 'InvalidArgumentError', call, what)
      }

      // the conditions were not replaced: realm-auth is still needed, and marking it is enough
      const alsoWaiting = broadcaster.whenReady(b.peerId, null as any)
      expect(broadcaster.internalSizes().waiters).to.equal(2)
      broadcaster.markReady(b.peerId, 'realm-auth')
      await alsoWaiting
      expect(await waiting).to.deep.equal(['fulfilled'])
    })
  })
}
