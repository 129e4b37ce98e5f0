import { disconnect, expectNoLeaks, onceEvent } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { HubFixture } from './helpers.ts'

/** While started, the service holds its three node listeners and its gater; nothing else once peers are gone */
const WHILE_STARTED = ['nodeListeners', 'gater']

describe('the peer table on a plain libp2p node, without a cleanup broadcaster', () => {
  const f = new HubFixture()

  it('no per-peer entry, timer or decaying value is left after every peer disconnects, nor anything after stop', async () => {
    const { connections } = await f.hubWith({ idleTimeout: 60_000 })
    const tag = connections.registerDecayingTag('seen', 1_000, v => ({ value: v.value - 1, remove: v.value <= 1 }), (v, d) => v.value + d)
    const nodes = await f.dialIn(6)
    for (const node of nodes) {
      connections.tagPeer(node.peerId, 'x', 3)
      tag.bump(node.peerId, 5)
    }
    connections.protect(nodes[0].peerId, 'app-protected')
    expect(connections.internalSizes()).to.include({ peers: 6, connections: 6, decayingValues: 6, timers: 1, cleanupLayer: 0 })
    expect(connections.stats()).to.include({ peers: 6, connections: 6, inbound: 6, outbound: 0 })
    for (const node of nodes) {
      await disconnect(node, f.hub)
      // alone, the manager forgets the peer with its last connection
      expect(connections.info(node.peerId)).to.equal(undefined)
    }
    expectNoLeaks(connections, [...WHILE_STARTED, 'protected', 'decayingTags'])
    expect(connections.internalSizes()).to.include({ protected: 1, decayingTags: 1, nodeListeners: 3, gater: 1 })
    connections.unprotect(nodes[0].peerId, 'app-protected')
    tag.close()
    await f.hub.stop()
    expectNoLeaks(connections)
  })

  it('a peer with two connections stays while one remains; the counts follow each connection', async () => {
    const { connections } = await f.hubWith({})
    const [a] = await f.dialIn(1)
    const outbound = await f.hub.dial(a.getMultiaddrs(), { force: true })
    expect(connections.stats()).to.include({ peers: 1, connections: 2, inbound: 1, outbound: 1 })
    const closed = onceEvent(f.hub, 'connection:close', c => c.id === outbound.id)
    await outbound.close()
    await closed
    expect(connections.stats()).to.include({ peers: 1, connections: 1, inbound: 1, outbound: 0 })
    expect(connections.info(a.peerId)).to.include({ connections: 1 })
  })
})
