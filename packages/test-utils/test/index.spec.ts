import { expect } from 'aegir/chai'
import { connect, createFakeClock, createNode, createNodes, disconnect, expectNoLeaks, leftovers, seededRandom, stopAll, stopAndExpectNoLeaks } from '../src/index.ts'
import type { Libp2p } from '@libp2p/interface'

describe('@holdfast/test-utils', () => {
  it('the fake clock moves only when told, and counts its timers', async () => {
    const clock = createFakeClock(1_000)
    const fired: number[] = []
    clock.setTimeout(() => { fired.push(clock.now()) }, 100)
    const cancelled = clock.setTimeout(() => { fired.push(-1) }, 50)
    clock.clearTimeout(cancelled)
    expect(clock.countTimers()).to.equal(1)
    clock.tick(99)
    expect(fired).to.deep.equal([])
    clock.tick(1)
    expect(fired).to.deep.equal([1_100])
    expect(clock.countTimers()).to.equal(0)
    let resolved = false
    clock.setTimeout(() => { void Promise.resolve().then(() => { resolved = true }) }, 10)
    await clock.tickAsync(10)
    expect(resolved).to.be.true()
  })

  for (const transport of ['memory', 'tcp'] as const) {
    it(`connects and disconnects real nodes over ${transport}`, async () => {
      const [a, b] = await createNodes(2, { transport })
      try {
        const addr = a.getMultiaddrs()[0].toString()
        expect(addr).to.match(transport === 'memory' ? /^\/memory\// : /^\/ip4\/127\.0\.0\.1\/tcp\/\d+/)
        const connection = await connect(a, b)
        expect(connection.remotePeer.equals(b.peerId)).to.be.true()
        expect(b.getConnections(a.peerId)).to.have.lengthOf(1)
        await disconnect(a, b)
        expect(a.getConnections(b.peerId)).to.have.lengthOf(0)
        expect(b.getConnections(a.peerId)).to.have.lengthOf(0)
      } finally {
        await stopAll([a, b])
      }
    })
  }

  it('gives every memory node its own address', async () => {
    const nodes = await Promise.all([createNode(), createNode(), createNode()])
    try {
      const addrs = new Set(nodes.map(n => n.getMultiaddrs()[0].toString()))
      expect(addrs.size).to.equal(3)
    } finally {
      await stopAll(nodes)
    }
  })

  it('reports leftovers of a service and allows the named exceptions', () => {
    const service = { internalSizes: () => ({ peers: 0, timers: 2, listeners: 0, nodeListeners: 4 }) }
    expect(leftovers(service)).to.deep.equal({ timers: 2, nodeListeners: 4 })
    expect(() => { expectNoLeaks(service, ['nodeListeners']) }).to.throw(/"timers":2/)
    expect(() => { expectNoLeaks(service, ['nodeListeners', 'timers']) }).to.not.throw()
  })

  it('stopAndExpectNoLeaks stops the nodes, then fails on a service that still holds something unless it is excepted', async () => {
    const sizes = { peers: 0, timers: 1 }
    const make = async (): Promise<Libp2p<any>> => createNode({ services: { probe: () => ({ internalSizes: () => sizes }) } })
    const node = await make()
    await expect(stopAndExpectNoLeaks([node, undefined], 'probe')).to.eventually.be.rejected().with.property('message').that.matches(/"timers":1/)
    expect(node.status).to.equal('stopped')
    await stopAndExpectNoLeaks([await make()], 'probe', ['timers'])
    await stopAndExpectNoLeaks([await make()], 'absent')
  })

  it('a seeded random source repeats itself and stays in [0, 1)', () => {
    const a = seededRandom(42)
    const b = seededRandom(42)
    const values = Array.from({ length: 1000 }, () => a())
    expect(values).to.deep.equal(Array.from({ length: 1000 }, () => b()))
    expect(values.every(v => v >= 0 && v < 1)).to.be.true()
    expect(new Set(values).size).to.be.greaterThan(990)
    expect(seededRandom(43)()).to.not.equal(seededRandom(42)())
  })
})
