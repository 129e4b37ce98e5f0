import { connect, onceEvent } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { HubFixture, nextEvent } from './helpers.ts'

describe('idle timeout (real nodes, fake clock)', () => {
  const f = new HubFixture()

  it('closes only unprotected connections without streams', async () => {
    const { connections } = await f.hubWith({ idleTimeout: 40_000, gracePeriod: 0 })
    const [idle, protectedPeer, busy] = await f.nodes(3)
    await busy.handle('/hold/1', () => {}) // never closes its side
    for (const node of [idle, protectedPeer, busy]) {
      const identified = onceEvent(f.hub, 'peer:identify', r => r.peerId.equals(node.peerId))
      await connect(node, f.hub)
      await identified
    }
    connections.protect(protectedPeer.peerId, 'app-protected')
    const stream = await f.hub.dialProtocol(busy.peerId, '/hold/1')
    const closed = nextEvent(f.hub, 'connection:closed-by-manager')
    const gone = onceEvent(f.hub, 'peer:disconnect', p => p.equals(idle.peerId))
    // never before idleTimeout; the sweep samples every idleTimeout / 4, so a connection whose
    // last stream was still closing at a sweep is closed by two sweeps after idleTimeout at most
    await f.clock.tickAsync(39_999)
    expect(connections.stats().closed.idle).to.equal(0)
    await f.clock.tickAsync(20_001)
    expect(await closed).to.deep.equal({ peer: idle.peerId, reason: 'idle' })
    await gone
    await f.clock.tickAsync(120_000)
    expect(f.hub.getConnections(protectedPeer.peerId)).to.have.lengthOf(1)
    expect(f.hub.getConnections(busy.peerId)).to.have.lengthOf(1)
    expect(connections.stats().closed).to.deep.equal({ trim: 0, idle: 1, limit: 0 })
    stream.abort(new Error('done'))
    connections.unprotect(protectedPeer.peerId, 'app-protected')
  })
})
