import { TypedEventEmitter } from '@libp2p/interface'
import { expect } from 'aegir/chai'
import { connect, createNodes, onceEvent, stopAll } from '../src/index.ts'
import type { Subscribable } from '../src/index.ts'
import type { HoldfastEvent, HoldfastEventType } from '@holdfast/interface'

interface Events {
  tick: CustomEvent<number>
}

/** a broadcaster's `subscribe` and nothing else, counting its live subscriptions */
function fakeBroadcaster (): Subscribable & { publish(type: HoldfastEventType, detail: unknown): void, subscriptions(): number } {
  const handlers = new Set<{ type: string, handler(event: HoldfastEvent): void }>()
  return {
    subscribe: ((type: HoldfastEventType, handler: (event: HoldfastEvent) => void) => {
      const entry = { type, handler }
      handlers.add(entry)
      return () => { handlers.delete(entry) }
    }) as Subscribable['subscribe'],
    publish: (type, detail) => {
      for (const entry of [...handlers]) {
        if (entry.type === type) {
          entry.handler({ type, detail, time: 0 } as unknown as HoldfastEvent)
        }
      }
    },
    subscriptions: () => handlers.size
  }
}

describe('onceEvent', () => {
  it('resolves with the detail of the first event that passes the filter, then stops listening', async () => {
    const target = new TypedEventEmitter<Events>()
    const even = onceEvent<number>(target, 'tick', n => n % 2 === 0)
    for (const n of [1, 3, 4, 6]) {
      target.safeDispatchEvent('tick', { detail: n })
    }
    expect(await even).to.equal(4)
    expect(target.listenerCount('tick')).to.equal(0)
  })

  it('rejects with libp2p\'s TimeoutError past the timeout and stops listening', async () => {
    const target = new TypedEventEmitter<Events>()
    const started = performance.now()
    await expect(onceEvent(target, 'tick', { timeout: 20 })).to.eventually.be.rejected().with.property('name', 'TimeoutError')
    expect(performance.now() - started).to.be.at.least(15)
    expect(target.listenerCount('tick')).to.equal(0)
  })

  it('rejects with the signal\'s reason when it aborts, at once when it already has, and stops listening', async () => {
    const target = new TypedEventEmitter<Events>()
    const controller = new AbortController()
    const waiting = onceEvent(target, 'tick', { signal: controller.signal, timeout: 10_000 })
    expect(target.listenerCount('tick')).to.equal(1)
    controller.abort(new Error('enough'))
    await expect(waiting).to.eventually.be.rejected().with.property('message', 'enough')
    expect(target.listenerCount('tick')).to.equal(0)
    await expect(onceEvent(target, 'tick', { signal: AbortSignal.abort(new Error('before')) })).to.eventually.be.rejected().with.property('message', 'before')
    expect(target.listenerCount('tick')).to.equal(0)
  })

  it('rejects with what the filter throws and stops listening', async () => {
    const target = new TypedEventEmitter<Events>()
    const waiting = onceEvent<number>(target, 'tick', () => { throw new Error('bad filter') })
    target.safeDispatchEvent('tick', { detail: 1 })
    await expect(waiting).to.eventually.be.rejected().with.property('message', 'bad filter')
    expect(target.listenerCount('tick')).to.equal(0)
  })

  it('waits on the broadcaster\'s subscribe and unsubscribes once settled', async () => {
    const broadcaster = fakeBroadcaster()
    const online = onceEvent(broadcaster, 'peer:online', { filter: d => d.peer.toString() === 'b' })
    expect(broadcaster.subscriptions()).to.equal(1)
    broadcaster.publish('peer:online', { peer: { toString: () => 'a' } })
    broadcaster.publish('peer:online', { peer: { toString: () => 'b' } })
    expect((await online).peer.toString()).to.equal('b')
    expect(broadcaster.subscriptions()).to.equal(0)
    await expect(onceEvent(broadcaster, 'peer:offline', { timeout: 10 })).to.eventually.be.rejected().with.property('name', 'TimeoutError')
    expect(broadcaster.subscriptions()).to.equal(0)
  })

  it('waits on a libp2p node\'s events with the detail typed', async () => {
    const [a, b] = await createNodes(2)
    try {
      const connected = onceEvent(a, 'peer:connect', peer => peer.equals(b.peerId))
      await connect(a, b)
      expect((await connected).equals(b.peerId)).to.be.true()
    } finally {
      await stopAll([a, b])
    }
  })
})
