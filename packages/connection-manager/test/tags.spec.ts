import { connect, disconnect } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { HubFixture } from './helpers.ts'
import type { DecayingValue } from '@holdfast/interface'
import type { Stream } from '@libp2p/interface'

const keepValue = (v: DecayingValue): { value: number, remove: boolean } => ({ value: v.value, remove: false })
const sameValue = (v: DecayingValue): number => v.value
const toInfinity = (): number => Number.POSITIVE_INFINITY

describe('protection and tags (real nodes, memory transport)', () => {
  const f = new HubFixture()

  it('bad arguments throw InvalidArgumentError without a state change', async () => {
    const { connections } = await f.hubWith({})
    const [a] = await f.dialIn(1)
    expect(() => { connections.protect('peer' as any, 'x') }).to.throw().with.property('name', 'InvalidArgumentError')
    expect(() => { connections.protect(a.peerId, '') }).to.throw().with.property('name', 'InvalidArgumentError')
    expect(() => { connections.tagPeer(a.peerId, 't', Number.NaN) }).to.throw().with.property('name', 'InvalidArgumentError')
    expect(() => { connections.upsertTag(a.peerId, 't', toInfinity) }).to.throw().with.property('name', 'InvalidArgumentError')
    expect(() => connections.registerDecayingTag('d', 0, keepValue, sameValue)).to.throw().with.property('name', 'InvalidArgumentError')
    expect(() => connections.registerDecayingTag('d', 2 ** 34, keepValue, sameValue)).to.throw().that.includes({ name: 'InvalidArgumentError', argument: 'interval' })
    expect(connections.isProtected(a.peerId)).to.equal(false)
    expect(connections.info(a.peerId)?.tags).to.not.have.property('t')
    expect(connections.internalSizes().decayingTags).to.equal(0)
  })

  it('a peer stays protected while any tag protects it; unprotect says whether others remain', async () => {
    const { connections } = await f.hubWith({})
    const [a] = await f.dialIn(1)
    connections.protect(a.peerId, 'realm-member')
    connections.protect(a.peerId, 'relay-active')
    expect(connections.isProtected(a.peerId)).to.equal(true)
    expect(connections.isProtected(a.peerId, 'relay-active')).to.equal(true)
    expect(connections.isProtected(a.peerId, 'dht-routing')).to.equal(false)
    expect(connections.unprotect(a.peerId, 'relay-active')).to.equal(true)
    expect(connections.isProtected(a.peerId)).to.equal(true)
    expect(connections.unprotect(a.peerId, 'realm-member')).to.equal(false)
    expect(connections.isProtected(a.peerId)).to.equal(false)
    expect(connections.unprotect(a.peerId, 'realm-member')).to.equal(false)
  })

  it('protection outlives a disconnect (the reconnector asks isProtected of a peer that is gone); tags do not', async () => {
    const { connections } = await f.hubWith({})
    const [a] = await f.dialIn(1)
    connections.protect(a.peerId, 'app-protected')
    connections.tagPeer(a.peerId, 'friend', 40)
    expect(connections.info(a.peerId)?.tags.friend).to.equal(40)
    await disconnect(a, f.hub)
    expect(connections.isProtected(a.peerId)).to.equal(true)
    expect(connections.info(a.peerId)).to.equal(undefined)
    await connect(a, f.hub)
    expect(connections.info(a.peerId)?.tags).to.not.have.property('friend')
    expect(connections.info(a.peerId)?.protections).to.deep.equal(['app-protected'])
    connections.unprotect(a.peerId, 'app-protected')
  })

  it('the default score: tag sum, +10 with an outbound connection, +20 with an open stream', async () => {
    const { connections } = await f.hubWith({})
    const [a, b] = await f.dialIn(2)
    await f.hub.handle('/hold/1', () => {})
    await a.handle('/hold/1', () => {})
    connections.tagPeer(a.peerId, 'x', 5)
    connections.upsertTag(a.peerId, 'x', old => old + 2)
    connections.tagPeer(b.peerId, 'y', 1)
    connections.untagPeer(b.peerId, 'y')
    // an outbound connection from the hub to a, with a stream held open on it
    const outbound = await f.hub.dial(a.getMultiaddrs(), { force: true })
    const stream: Stream = await outbound.newStream('/hold/1')
    const info = connections.info(a.peerId)
    expect(info).to.include({ outbound: 1, inbound: 1, connections: 2 })
    expect(info?.tags.x).to.equal(7)
    expect(info?.score).to.equal(7 + 10 + 20)
    expect(connections.info(b.peerId)?.score).to.equal(0)
    await stream.close()
  })

  it('a replaced score function ranks the trim', async () => {
    const byTag = (peer: { tags: Record<string, number> }): number => -(peer.tags.rank ?? 0)
    const { connections } = await f.hubWith({ lowWater: 1, highWater: 3, gracePeriod: 0, silencePeriod: 60_000, score: byTag })
    await connections.trim() // starts the silence period: no automatic trim in this test
    const [a, b, c] = await f.dialIn(3)
    connections.tagPeer(a.peerId, 'rank', 1)
    connections.tagPeer(b.peerId, 'rank', 3)
    connections.tagPeer(c.peerId, 'rank', 2)
    const plan = connections.explainTrim()
    expect(plan.close.map(p => p.peer.toString())).to.deep.equal([b.peerId.toString(), c.peerId.toString()])
    expect(plan.close[0].score).to.equal(-3)
    expect(plan.close[0].parts).to.include({ tags: 3, outbound: 0 }) // streams: identify may still run
  })
})
