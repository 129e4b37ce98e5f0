import { createFakeClock, expectNoLeaks, stopAll } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { coreSchemas, dedup, defaultChain, logging, metrics, productionChain, rateLimit, recovery, timeout, validation } from '../src/index.ts'
import { withBroadcaster } from './helpers.ts'
import type { Node } from './helpers.ts'
import type { CleanupBroadcasterInit } from '../src/index.ts'
import type { CleanupBroadcaster, HoldfastEvent } from '@holdfast/interface'
import type { PeerId } from '@libp2p/interface'

describe('cleanup-broadcaster: the event stream and its middleware', () => {
  let node: Node
  let broadcaster: CleanupBroadcaster
  let peer: PeerId
  const clock = createFakeClock()

  async function start (init?: CleanupBroadcasterInit): Promise<void> {
    node = await withBroadcaster('memory', { clock, ...init })
    broadcaster = node.services.broadcaster
    peer = node.peerId
  }

  afterEach(async () => {
    await stopAll([node])
    expectNoLeaks(broadcaster)
    expect(broadcaster.stats().activeHandlers).to.equal(0)
  })

  describe('subscribe / publish', () => {
    beforeEach(async () => { await start() })

    it('delivers to every subscriber of the type and to wildcard subscribers, in order', () => {
      const seen: string[] = []
      broadcaster.subscribe('peer:online', ({ detail }) => { seen.push(`one:${detail.peer.equals(peer)}`) })
      broadcaster.subscribe('peer:online', () => { seen.push('two') })
      broadcaster.subscribe('*', (event) => { seen.push(`any:${event.type}`) })
      broadcaster.subscribe('peer:offline', () => { seen.push('wrong type') })
      broadcaster.publish('peer:online', { peer })
      expect(seen).to.deep.equal(['one:true', 'two', 'any:peer:online'])
      expect(broadcaster.stats()).to.include({ totalEvents: 1, activeHandlers: 4, dropped: 0 })
      expect(broadcaster.stats().byType).to.deep.equal({ 'peer:online': 1 })
    })

    it('unsubscribes by the returned function and by the signal, once', () => {
      let calls = 0
      const off = broadcaster.subscribe('peer:online', () => { calls++ })
      const controller = new AbortController()
      broadcaster.subscribe('peer:online', () => { calls++ }, { signal: controller.signal })
      expect(broadcaster.internalSizes().listeners).to.equal(1)
      broadcaster.publish('peer:online', { peer })
      off()
      off()
      controller.abort()
      broadcaster.publish('peer:online', { peer })
      expect(calls).to.equal(2)
      expect(broadcaster.stats().activeHandlers).to.equal(0)
      expect(broadcaster.internalSizes().listeners).to.equal(0)
      // an already aborted signal subscribes nothing
      broadcaster.subscribe('peer:online', () => { calls++ }, { signal: AbortSignal.abort() })
      expect(broadcaster.stats().activeHandlers).to.equal(0)
    })

    it('a handler that subscribes or unsubscribes during delivery does not disturb it', () => {
      const seen: string[] = []
      let offB: () => void = () => {}
      broadcaster.subscribe('peer:online', () => {
        seen.push('a')
        offB()
        broadcaster.subscribe('peer:online', () => { seen.push('late') })
      })
      offB = broadcaster.subscribe('peer:online', () => { seen.push('b') })
      broadcaster.publish('peer:online', { peer })
      expect(seen).to.deep.equal(['a', 'b'])
      broadcaster.publish('peer:online', { peer })
      expect(seen).to.deep.equal(['a', 'b', 'a', 'late'])
    })
  })

  describe('bad input: typed errors and no state change', () => {
    beforeEach(async () => { await start() })

    it('unknown event types', () => {
      const before = broadcaster.stats()
      expect(() => broadcaster.subscribe('peer:bogus' as any, () => {})).to.throw().with.property('name', 'UnknownEventTypeError')
      expect(() => { broadcaster.publish('peer:bogus' as any, { peer }) }).to.throw().with.property('name', 'UnknownEventTypeError')
      expect(() => { broadcaster.publish('__proto__' as any, { peer }) }).to.throw().with.property('name', 'UnknownEventTypeError')
      const b = broadcaster
      for (const detail of [null, undefined, 'peer', 7]) {
        expect(() => { b.publish('peer:removed', detail as any) }).to.throw().with.property('name', 'InvalidArgumentError')
      }
      expect(broadcaster.stats()).to.deep.equal(before)
    })

    it('bad handlers, signals and middleware: nothing subscribed; null options are no options', () => {
      const rows: Array<[string, () => unknown]> = [
        ['a handler that is no function', () => broadcaster.subscribe('peer:online', 'handler' as any)],
        ['a signal that is no AbortSignal', () => broadcaster.subscribe('peer:online', () => {}, { signal: { aborted: false } as any })],
        ['string options', () => broadcaster.subscribe('peer:online', () => {}, 'once' as any)],
        ['a middleware that is no function', () => { broadcaster.use({} as any) }]
      ]
      for (const [what, call] of rows) {
        expect(call, what).to.throw().with.property('name', 'InvalidArgumentError')
      }
      expect(broadcaster.stats().activeHandlers).to.equal(0)
      expect(broadcaster.internalSizes().listeners).to.equal(0)

      let calls = 0
      const off = broadcaster.subscribe('peer:online', () => { calls++ }, null as any)
      broadcaster.publish('peer:online', { peer })
      off()
      expect(calls).to.equal(1)
    })

    it('bad middleware options', () => {
      const rows: Array<[string, () => unknown]> = [
        ['timeout(-5)', () => timeout(-5)],
        ['timeout(0)', () => timeout(0)],
        ['timeout(2^31)', () => timeout(2 ** 31)],
        ['rateLimit(0)', () => rateLimit(0)],
        ['rateLimit(Infinity)', () => rateLimit(Number.POSITIVE_INFINITY)],
        ['rateLimit with a burst below one event', () => rateLimit(10, { burst: 0.5 })],
        ['dedup(NaN)', () => dedup(Number.NaN)],
        ['dedup(2^31)', () => dedup(2 ** 31)],
        ['dedup with a key that is no function', () => dedup(1_000, 'type' as any)],
        ['validation of a string', () => validation('schemas' as any)]
      ]
      for (const [what, make] of rows) {
        expect(make, what).to.throw().with.property('name', 'InvalidArgumentError')
      }
    })
  })

  describe('middleware', () => {
    it('recovery: a throwing or rejecting subscriber does not stop the others and is counted', async () => {
      await start()
      const seen: string[] = []
      broadcaster.subscribe('peer:online', () => { throw new Error('sync') })
      broadcaster.subscribe('peer:online', async () => { throw new Error('async') })
      broadcaster.subscribe('peer:online', () => { seen.push('third') })
      broadcaster.subscribe('*', () => { seen.push('wildcard') })
      broadcaster.publish('peer:online', { peer })
      expect(seen).to.deep.equal(['third', 'wildcard'])
      expect(broadcaster.stats().handlerErrors).to.equal(1)
      await Promise.resolve()
      await Promise.resolve()
      expect(broadcaster.stats().handlerErrors).to.equal(2)
    })

    it('recovery is added when the configured chain lacks it', async () => {
      await start({ middleware: [logging()] })
      let reached = false
      broadcaster.subscribe('peer:online', () => { throw new Error('boom') })
      broadcaster.subscribe('peer:online', () => { reached = true })
      broadcaster.publish('peer:online', { peer })
      expect(reached).to.be.true()
      expect(broadcaster.stats().handlerErrors).to.equal(1)
    })

    it('a throwing middleware neither throws at the publisher nor delivers', async () => {
      await start()
      let delivered = 0
      broadcaster.use(() => { throw new Error('bad middleware') })
      broadcaster.subscribe('peer:online', () => { delivered++ })
      expect(() => { broadcaster.publish('peer:online', { peer }) }).to.not.throw()
      expect(delivered).to.equal(0)
      expect(broadcaster.stats()).to.include({ handlerErrors: 1, dropped: 1 })
    })

    it('rateLimit drops what exceeds the budget and counts it, per type when asked', async () => {
      await start({ middleware: [recovery(), rateLimit(10, { byType: true, exempt: ['peer:gone'] })] })
      let online = 0
      let offline = 0
      let gone = 0
      broadcaster.subscribe('peer:online', () => { online++ })
      broadcaster.subscribe('peer:offline', () => { offline++ })
      broadcaster.subscribe('peer:gone', () => { gone++ })
      for (let i = 0; i < 25; i++) {
        broadcaster.publish('peer:online', { peer })
        broadcaster.publish('peer:gone', { peer, reason: 'manual' })
      }
      broadcaster.publish('peer:offline', { peer })
      expect(online).to.equal(10)
      expect(offline).to.equal(1)
      expect(gone).to.equal(25)
      expect(broadcaster.stats().dropped).to.equal(15)
      expect(broadcaster.stats().droppedBy).to.deep.equal({ rateLimit: 15 })
      // the bucket refills with time: 500 ms at 10/s is 5 more
      clock.tick(500)
      for (let i = 0; i < 10; i++) {
        broadcaster.publish('peer:online', { peer })
      }
      expect(online).to.equal(15)
    })

    it('rateLimit below one event per second still passes one, then one per interval', async () => {
      await start({ middleware: [recovery(), rateLimit(0.5)] })
      let online = 0
      broadcaster.subscribe('peer:online', () => { online++ })
      broadcaster.publish('peer:online', { peer })
      broadcaster.publish('peer:online', { peer })
      expect(online).to.equal(1)
      clock.tick(1_000)
      broadcaster.publish('peer:online', { peer })
      expect(online).to.equal(1)
      clock.tick(1_000)
      broadcaster.publish('peer:online', { peer })
      expect(online).to.equal(2)
    })

    it('dedup drops a repeat inside the window and counts it; a different detail passes', async () => {
      await start({ middleware: [recovery(), dedup(1_000)] })
      const seen: string[] = []
      broadcaster.subscribe('restart:completed', ({ detail }) => { seen.push(String(detail.success)) })
      broadcaster.publish('restart:completed', { peer, success: true })
      broadcaster.publish('restart:completed', { peer, success: true })
      broadcaster.publish('restart:completed', { peer, success: false })
      clock.tick(999)
      broadcaster.publish('restart:completed', { peer, success: true })
      clock.tick(1)
      broadcaster.publish('restart:completed', { peer, success: true })
      expect(seen).to.deep.equal(['true', 'false', 'true'])
      expect(broadcaster.stats().droppedBy).to.deep.equal({ dedup: 2 })
    })

    it('validation drops malformed events and counts them', async () => {
      await start({ middleware: [recovery(), validation(coreSchemas)] })
      const seen: Array<HoldfastEvent<'connection:state'>> = []
      broadcaster.subscribe('connection:state', (event) => { seen.push(event) })
      broadcaster.publish('connection:state', { peer, connectionId: 'c1', state: 'open', direction: 'inbound', path: 'direct' })
      broadcaster.publish('connection:state', { peer, connectionId: 'c1', state: 'exploded', direction: 'inbound', path: 'direct' } as any)
      broadcaster.publish('connection:state', { peer: 'not-a-peer-id', connectionId: 'c1', state: 'open', direction: 'inbound', path: 'direct' } as any)
      broadcaster.publish('connection:state', { peer, connectionId: '', state: 'open', direction: 'inbound', path: 'direct' })
      expect(seen).to.have.lengthOf(1)
      expect(broadcaster.stats()).to.include({ dropped: 3 })
      expect(broadcaster.stats().droppedBy).to.deep.equal({ validation: 3 })
      expect(() => validation({ 'peer:bogus': () => true } as any)).to.throw().with.property('name', 'InvalidArgumentError')
    })

    it('timeout flags async handlers that outlive the budget, on the broadcaster clock', async () => {
      await start({ middleware: [recovery(), timeout(100)] })
      let finishSlow: () => void = () => {}
      broadcaster.subscribe('peer:online', async () => new Promise<void>(resolve => { finishSlow = resolve }))
      broadcaster.subscribe('peer:online', async () => {})
      broadcaster.publish('peer:online', { peer })
      expect(broadcaster.internalSizes().timers).to.equal(2)
      await Promise.resolve()
      await Promise.resolve()
      expect(broadcaster.internalSizes().timers).to.equal(1)
      clock.tick(100)
      expect(broadcaster.stats().slowHandlers).to.equal(1)
      finishSlow()
      expect(broadcaster.internalSizes().timers).to.equal(0)
    })

    it('metrics measures delivery per type; the presets are complete chains', async () => {
      const measured = metrics()
      await start({ middleware: [recovery(), measured] })
      broadcaster.subscribe('peer:online', () => {})
      broadcaster.publish('peer:online', { peer })
      broadcaster.publish('peer:online', { peer })
      expect(measured.handlerTimes()['peer:online']?.count).to.equal(2)
      expect(defaultChain().map(m => m.middlewareName)).to.deep.equal(['recovery', 'logging', 'metrics'])
      expect(productionChain().map(m => m.middlewareName)).to.deep.equal(['recovery', 'logging', 'metrics', 'timeout', 'validation'])
    })

    it('middleware cannot stop a cleanup trigger', async () => {
      await start({ middleware: [recovery(), rateLimit(1)] })
      let removedDelivered = 0
      broadcaster.subscribe('peer:removed', () => { removedDelivered++ })
      const tracked = broadcaster.track(peer, async () => new Promise(() => {}))
      broadcaster.publish('peer:online', { peer }) // uses the only token
      broadcaster.publish('peer:removed', { peer, reason: 'attempts-exhausted' })
      expect(removedDelivered).to.equal(0)
      await expect(tracked).to.eventually.be.rejected.with.property('name', 'ConnectionClosedError')
    })
  })
})
