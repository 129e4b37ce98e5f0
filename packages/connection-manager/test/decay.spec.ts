import { connect, createFakeClock, createNode, expectNoLeaks, stopAll } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { bumpOverwrite, bumpSumBounded, bumpSumUnbounded, decayExpireWhenInactive, decayFixed, decayLinear, decayNone } from '../src/index.ts'
import { createHub } from './helpers.ts'
import type { Hub } from './helpers.ts'
import type { FakeClock } from '@holdfast/test-utils'
import type { Libp2p } from '@libp2p/interface'

describe('decaying tags (real nodes, fake clock)', () => {
  let hub: Hub
  let peer: Libp2p
  let clock: FakeClock

  beforeEach(async () => {
    clock = createFakeClock(0)
    hub = await createHub({ clock, idleTimeout: Infinity })
    peer = await createNode()
    await connect(peer, hub)
  })

  afterEach(async () => {
    await stopAll([hub, peer])
    expectNoLeaks(hub.services.connections)
  })

  const valueOf = (name: string): number | undefined => hub.services.connections.info(peer.peerId)?.tags[name]

  it('decays once per interval, at the tag\'s own ticks, and is removed when the decay says so', async () => {
    const tag = hub.services.connections.registerDecayingTag('useful', 1_000, decayFixed(2), bumpSumBounded(0, 10))
    await clock.tickAsync(500)
    tag.bump(peer.peerId, 7)
    expect(valueOf('useful')).to.equal(7)
    await clock.tickAsync(499) // t = 999
    expect(valueOf('useful')).to.equal(7)
    await clock.tickAsync(1) // t = 1000: the first tick of the tag (registered at 0), 500 ms after the bump
    expect(valueOf('useful')).to.equal(5)
    await clock.tickAsync(2_500) // ticks at 2000 and 3000
    expect(valueOf('useful')).to.equal(1)
    await clock.tickAsync(500) // t = 4000: 1 - 2 <= 0 -> removed
    expect(valueOf('useful')).to.equal(undefined)
    expect(hub.services.connections.internalSizes().decayingValues).to.equal(0)
    tag.bump(peer.peerId, 25) // starts again from 0, bounded at 10
    expect(valueOf('useful')).to.equal(10)
    tag.bump(peer.peerId, -30)
    expect(valueOf('useful')).to.equal(0)
    tag.close()
  })

  it('applies every elapsed tick when read late, and a bump first brings the value up to date', async () => {
    const tag = hub.services.connections.registerDecayingTag('halving', 1_000, decayLinear(0.5), bumpSumUnbounded())
    tag.bump(peer.peerId, 64)
    await clock.tickAsync(3_000) // nobody reads: nothing runs (no timer per tag)
    expect(clock.countTimers()).to.equal(0)
    tag.bump(peer.peerId, 1) // 64 -> 32 -> 16 -> 8, then + 1
    expect(valueOf('halving')).to.equal(9)
    await clock.tickAsync(4_000) // 9 -> 4 -> 2 -> 1 -> 0: removed
    expect(valueOf('halving')).to.equal(undefined)
    tag.close()
  })

  it('expire-when-inactive drops the value at the first tick after the inactivity period; a bump renews it', async () => {
    const tag = hub.services.connections.registerDecayingTag('active', 1_000, decayExpireWhenInactive(2_500), bumpOverwrite())
    tag.bump(peer.peerId, 30)
    await clock.tickAsync(2_000)
    tag.bump(peer.peerId, 40) // renewed at t = 2000
    await clock.tickAsync(2_000) // t = 4000: inactive 2000 < 2500
    expect(valueOf('active')).to.equal(40)
    await clock.tickAsync(1_000) // t = 5000: inactive 3000 >= 2500
    expect(valueOf('active')).to.equal(undefined)
    tag.close()
  })

  it('a value that cannot decay costs one step however long it was not read', async () => {
    let calls = 0
    const none = decayNone()
    const tag = hub.services.connections.registerDecayingTag('static', 10, (v) => { calls++; return none(v) }, bumpSumUnbounded())
    tag.bump(peer.peerId, 5)
    await clock.tickAsync(10_000_000) // a million ticks
    expect(valueOf('static')).to.equal(5)
    expect(calls).to.equal(2)
    tag.close()
  })

  it('remove and close drop the values; a closed tag cannot be bumped; names are unique', async () => {
    const { connections } = hub.services
    const tag = connections.registerDecayingTag('t', 1_000, decayNone(), bumpSumUnbounded())
    expect(() => connections.registerDecayingTag('t', 1_000, decayNone(), bumpSumUnbounded())).to.throw().with.property('name', 'InvalidArgumentError')
    tag.bump(peer.peerId, 3)
    tag.remove(peer.peerId)
    expect(valueOf('t')).to.equal(undefined)
    tag.bump(peer.peerId, 3)
    tag.close()
    expect(valueOf('t')).to.equal(undefined)
    expect(() => { tag.bump(peer.peerId, 1) }).to.throw().with.property('name', 'InvalidArgumentError')
    expect(connections.internalSizes()).to.include({ decayingTags: 0, decayingValues: 0 })
  })
})
