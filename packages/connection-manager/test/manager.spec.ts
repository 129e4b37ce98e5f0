import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { CLEANUP_ORDER } from '@holdfast/interface'
import { connect, createNode, disconnect, onceEvent } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { watermarkConnectionManager } from '../src/index.ts'
import { HubFixture } from './helpers.ts'
import type { Hub } from './helpers.ts'
import type { WatermarkConnectionManagerInit } from '../src/index.ts'
import type { CleanupBroadcaster, CleanupReport, HoldfastEvents, PeerConnInfo } from '@holdfast/interface'
import type { PeerId } from '@libp2p/interface'

const LAYER = 'connection-manager'

describe('the manager beside a cleanup broadcaster (real nodes, memory transport)', () => {
  const f = new HubFixture()

  /** The hub with a cleanup broadcaster and the manager */
  async function hubWithBroadcaster (init: WatermarkConnectionManagerInit = {}): Promise<{ hub: Hub, broadcaster: CleanupBroadcaster }> {
    const node = await createNode({
      services: { broadcaster: cleanupBroadcaster(), connections: watermarkConnectionManager({ clock: f.clock, ...init }) },
      config: { connectionMonitor: { enabled: false } }
    })
    const hub = f.adopt(node as unknown as Hub)
    return { hub, broadcaster: (node.services as { broadcaster: CleanupBroadcaster }).broadcaster }
  }

  /** The report of the next cleanup of `peer` */
  async function cleaned (broadcaster: CleanupBroadcaster, peer: PeerId): Promise<CleanupReport> {
    return new Promise(resolve => {
      const unsubscribe = broadcaster.subscribe('peer:cleaned', ({ detail }) => {
        if (detail.peer.equals(peer)) {
          unsubscribe()
          resolve(detail.report)
        }
      })
    })
  }

  it('publishes its events through the cleanup broadcaster', async () => {
    const { broadcaster } = await hubWithBroadcaster({ lowWater: 1, highWater: 2, gracePeriod: 0 })
    const seen: Array<keyof HoldfastEvents> = []
    broadcaster.subscribe('*', (event) => { seen.push(event.type) })
    const completed = new Promise<HoldfastEvents['trim:completed']>(resolve => broadcaster.subscribe('trim:completed', ({ detail }) => { resolve(detail) }))
    await f.dialIn(3)
    const detail = await completed
    expect(detail.after).to.equal(1)
    expect(seen).to.include.members(['trim:started', 'trim:completed', 'connection:closed-by-manager'])
  })

  it('forgets a departed peer in its cleanup layer, the last of the chain: an app layer above it still reads the peer\'s tags', async () => {
    const { hub, broadcaster } = await hubWithBroadcaster()
    const { connections } = hub.services
    const [a] = await f.dialIn(1)
    connections.tagPeer(a.peerId, 'friend', 40)
    let seen: { info: PeerConnInfo | undefined, peers: number } | undefined
    const removeLayer = broadcaster.onCleanup('app', CLEANUP_ORDER.app, async (peer) => {
      await Promise.resolve() // by now libp2p has reported the connection closed to every listener
      seen = { info: connections.info(peer), peers: connections.stats().peers }
    })
    const report = cleaned(broadcaster, a.peerId)
    await disconnect(a, hub)
    expect((await report).layers.map(l => [l.layer, l.ok])).to.deep.equal([['app', true], [LAYER, true]])
    expect(seen?.info).to.deep.include({ connections: 0, tags: { friend: 40 } })
    expect(seen?.peers, 'no longer counted as connected').to.equal(0)
    expect(connections.info(a.peerId)).to.equal(undefined)
    expect(connections.internalSizes()).to.include({ peers: 0, connections: 0, cleanupLayer: 1 })
    removeLayer()
  })

  it('a cleanup() of a connected peer: the peer keeps its entry through the layers, and loses it with the last connection the broadcaster closes', async () => {
    const { hub, broadcaster } = await hubWithBroadcaster()
    const { connections } = hub.services
    const [a] = await f.dialIn(1)
    const closed = onceEvent(hub, 'connection:close', c => c.remotePeer.equals(a.peerId))
    const report = await broadcaster.cleanup(a.peerId, 'manual')
    await closed
    expect(report).to.include({ connectionsClosed: 1 })
    expect(report.layers.map(l => l.layer)).to.deep.equal([LAYER])
    expect(connections.info(a.peerId)).to.equal(undefined)
    expect(connections.internalSizes()).to.include({ peers: 0, connections: 0 })
  })

  it('a peer back before its cleanup reached the manager starts a new visit: a new grace period and no tags; nothing is left after it goes', async () => {
    const { hub, broadcaster } = await hubWithBroadcaster()
    const { connections } = hub.services
    const [a] = await f.dialIn(1)
    const firstVisit = connections.info(a.peerId)?.firstSeen
    connections.tagPeer(a.peerId, 'friend', 40)
    const gate = Promise.withResolvers<void>()
    const removeLayer = broadcaster.onCleanup('app', CLEANUP_ORDER.app, async () => gate.promise)

    try {
      const firstCleanup = cleaned(broadcaster, a.peerId)
      await disconnect(a, hub)
      // held by the app's layer: the entry waits for the manager's
      expect(connections.internalSizes()).to.include({ peers: 1, connections: 0 })
      expect(connections.stats().peers).to.equal(0)
      expect(connections.info(a.peerId)?.tags.friend).to.equal(40)

      await f.clock.tickAsync(5_000)
      await connect(a, hub)
      const secondVisit = connections.info(a.peerId)
      expect(secondVisit?.firstSeen).to.equal((firstVisit ?? 0) + 5_000)
      expect(secondVisit?.tags).to.not.have.property('friend')
      gate.resolve()
      await firstCleanup
      expect(connections.info(a.peerId)?.connections, 'the old visit\'s cleanup leaves the new one alone').to.equal(1)

      const secondCleanup = cleaned(broadcaster, a.peerId)
      await disconnect(a, hub)
      await secondCleanup
      expect(connections.internalSizes()).to.include({ peers: 0, connections: 0 })
    } finally {
      gate.resolve() // a failed assertion must not leave the node's stop waiting on the app's layer
      removeLayer()
    }
  })

  it('its cleanup layer is added once at start, whatever the restarts, and removed at stop', async () => {
    const { hub, broadcaster } = await hubWithBroadcaster()
    const { connections } = hub.services
    const [a, b] = await f.dialIn(2)
    await connections.stop()
    connections.start()
    connections.start()
    expect(connections.internalSizes().cleanupLayer).to.equal(1)
    const withLayer = await broadcaster.cleanup(a.peerId, 'manual')
    expect(withLayer.layers.filter(l => l.layer === LAYER)).to.have.lengthOf(1)
    await connections.stop()
    expect(connections.internalSizes().cleanupLayer).to.equal(0)
    const without = await broadcaster.cleanup(b.peerId, 'manual')
    expect(without.layers.filter(l => l.layer === LAYER)).to.have.lengthOf(0)
  })
})
