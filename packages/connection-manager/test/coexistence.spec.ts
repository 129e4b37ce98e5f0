import { connect, onceEvent } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { PROTECTED_STORE_TAG, PROTECTED_STORE_TAG_VALUE } from '../src/index.ts'
import { HubFixture, nextEvent } from './helpers.ts'
import type { Hub } from './helpers.ts'

/** Resolves once the hub holds at most `count` connections (checked now and at every close) */
async function untilAtMost (hub: Hub, count: number): Promise<void> {
  if (hub.getConnections().length <= count) {
    return
  }
  await onceEvent(hub, 'connection:close', () => hub.getConnections().length <= count)
}

describe('beside libp2p\'s built-in connection manager on one node', () => {
  const f = new HubFixture()

  it('the built-in pruner keeps our protected peers, and our trim keeps the peers libp2p values', async () => {
    const builtInMax = 12
    const { connections } = await f.hubWith({ lowWater: 5, highWater: 8, gracePeriod: 0, silencePeriod: 60_000 }, {
      connectionManager: { maxConnections: builtInMax }
    })
    const { hub, clock } = f
    await connections.trim() // opens a silence period, so the built-in pruner acts first

    const nodes = await f.nodes(16)
    const protectedPeers = nodes.slice(0, 3)
    const valued = nodes.slice(3, 5)
    const ordinary = nodes.slice(5)

    // protection is mirrored into the peer store as a high tag, which the built-in pruner ranks by
    for (const node of protectedPeers) {
      const mirrored = onceEvent(hub, 'peer:update', u => u.peer.id.equals(node.peerId) && u.peer.tags.has(PROTECTED_STORE_TAG))
      connections.protect(node.peerId, 'realm-member')
      await mirrored
      expect((await hub.peerStore.get(node.peerId)).tags.get(PROTECTED_STORE_TAG)?.value).to.equal(PROTECTED_STORE_TAG_VALUE)
    }
    // peers another service values, the way kad-dht tags its closest peers
    for (const node of valued) {
      await hub.peerStore.merge(node.peerId, { tags: { 'kad-close': { value: 50 } } })
    }

    // outbound dials are never refused by maxConnections; the built-in pruner trims back to 12
    // newest first among equals in the built-in sort: the peers to keep are dialed last
    for (const node of [...ordinary, ...valued, ...protectedPeers]) {
      await connect(hub, node)
    }
    await untilAtMost(hub, builtInMax)
    expect(hub.getConnections()).to.have.lengthOf(builtInMax)
    const afterPruner = new Set(hub.getConnections().map(c => c.remotePeer.toString()))
    for (const node of [...protectedPeers, ...valued]) {
      expect(afterPruner.has(node.peerId.toString()), 'kept by the built-in pruner').to.equal(true)
    }
    expect(connections.stats().closed.trim).to.equal(0) // so the built-in pruner closed those 4

    // our trim: 12 > highWater 8, down to lowWater 5; the peer-store tags count in our score
    expect(connections.info(valued[0].peerId)?.tags['kad-close']).to.equal(50)
    expect(connections.info(protectedPeers[0].peerId)?.tags).to.not.have.property(PROTECTED_STORE_TAG)
    const completed = nextEvent(hub, 'trim:completed')
    await clock.tickAsync(60_000)
    const report = await completed
    expect(report).to.include({ before: builtInMax, after: 5 })
    const left = hub.getConnections().map(c => c.remotePeer.toString()).sort()
    expect(left).to.deep.equal([...protectedPeers, ...valued].map(n => n.peerId.toString()).sort())

    for (const node of protectedPeers) {
      const removed = onceEvent(hub, 'peer:update', u => u.peer.id.equals(node.peerId) && !u.peer.tags.has(PROTECTED_STORE_TAG))
      connections.unprotect(node.peerId, 'realm-member')
      await removed
    }
  })
})
