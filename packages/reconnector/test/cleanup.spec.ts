/**
 * The reconnector's layer of the cleanup broadcaster's chain: a cleanup that lets go of a peer
 * (the user logged out, the app is closing, a manual cleanup of that peer) removes it instead
 * of holding it, while a cleanup that re-makes a connection is bridged like any disconnect.
 */

import { connect, expectNoLeaks, onceEvent } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { PARKED_TAG_PREFIX } from '../src/constants.ts'
import { defaults } from '../src/index.ts'
import { createHarness, createRemote, detailsOf, hangUp, stopAndCheck, WHILE_STARTED } from './helpers.ts'
import type { Harness, Remote } from './helpers.ts'
import type { CleanupBroadcaster } from '@holdfast/interface'
import type { PeerId } from '@libp2p/interface'

/** long enough for the window, every attempt and the hold to have passed */
const EVERYTHING_MS = defaults.stateHoldTime + defaults.maxDelay

function broadcasterOf (h: Harness): CleanupBroadcaster {
  const broadcaster = h.node.services.broadcaster
  if (broadcaster == null) {
    throw new Error('the harness has a broadcaster')
  }
  return broadcaster
}

/** resolves when the reconnector announced `peer` offline */
async function offline (h: Harness, peer: PeerId): Promise<void> {
  await new Promise<void>(resolve => {
    const listener = ({ detail }: CustomEvent<{ peer: PeerId }>): void => {
      if (detail.peer.equals(peer)) {
        h.node.services.reconnector.removeEventListener('peer:offline', listener)
        resolve()
      }
    }
    h.node.services.reconnector.addEventListener('peer:offline', listener)
  })
}

/** the reconnector's events about `peer`, in order */
const eventsOf = (h: Harness, peer: PeerId): string[] => h.events.filter(e => e.detail.peer.equals(peer)).map(e => e.type)

describe('reconnector and the cleanup broadcaster\'s chain (real nodes, fake time)', () => {
  let harness: Harness | undefined
  let remotes: Remote[] = []

  /** the node under test, connected to `count` remotes it watches */
  async function watched (count: number): Promise<[Harness, Remote[]]> {
    const h = await createHarness({ random: () => 0.5 })
    harness = h
    const peers = await Promise.all(Array.from({ length: count }, async () => createRemote()))
    remotes.push(...peers)
    for (const remote of peers) {
      h.node.services.reconnector.watch(remote.peerId)
      await connect(h.node, remote.node)
    }
    return [h, peers]
  }

  afterEach(async () => {
    await stopAndCheck(harness, remotes.map(r => r.node))
    harness = undefined
    remotes = []
  })

  it('user-logout of a held peer removes it (cleaned-up) at once: no attempt, no hold left', async () => {
    const [h, [b]] = await watched(1)
    await hangUp(h, b.node)
    expect(h.node.services.reconnector.state(b.peerId)).to.equal('held')

    const report = await broadcasterOf(h).cleanup(b.peerId, 'user-logout')
    expect(report.layers.find(l => l.layer === 'reconnector')).to.include({ ok: true })
    expect(detailsOf(h, 'peer:removed')).to.deep.equal([{ peer: b.peerId, reason: 'cleaned-up' }])
    expect(eventsOf(h, b.peerId)).to.deep.equal(['peer:online', 'peer:held', 'peer:removed', 'peer:offline'])
    expect(h.node.services.reconnector.state(b.peerId)).to.equal(undefined)

    await h.advance(EVERYTHING_MS)
    expect(h.dials).to.have.lengthOf(0)
    expect(h.node.getConnections(b.peerId)).to.have.lengthOf(0)
    expectNoLeaks(h.node.services.reconnector, ['watched', ...WHILE_STARTED])
  })

  it('app-terminating of connected peers: each is removed once its connection is gone, never held nor redialed, its keep-alive tags dropped', async () => {
    const [h, peers] = await watched(2)
    const [b] = peers
    const parked = onceEvent(h.node, 'peer:update', ({ peer }) => peer.id.equals(b.peerId) && peer.tags.has(`${PARKED_TAG_PREFIX}keep-alive-x`))
    await h.node.peerStore.merge(b.peerId, { tags: { 'keep-alive-x': { value: 7 } } })
    await parked
    const gone = Promise.all(peers.map(async r => offline(h, r.peerId)))

    await broadcasterOf(h).closeAll('app-terminating')
    await gone
    for (const remote of peers) {
      expect(eventsOf(h, remote.peerId), remote.peerId.toString()).to.deep.equal(['peer:online', 'peer:removed', 'peer:offline'])
    }
    expect(detailsOf(h, 'peer:removed').map(d => d.reason)).to.deep.equal(['cleaned-up', 'cleaned-up'])
    expect(h.node.services.reconnector.held()).to.deep.equal([])

    await h.advance(EVERYTHING_MS)
    expect(h.dials).to.have.lengthOf(0)
    expect(h.node.getConnections()).to.have.lengthOf(0)
    expectNoLeaks(h.node.services.reconnector, ['watched', ...WHILE_STARTED])
    const tags = [...(await h.node.peerStore.get(b.peerId)).tags.keys()]
    expect(tags.filter(t => t.includes('keep-alive'))).to.deep.equal([])
  })

  it('a cleanup that re-makes the connection (stale-connection-suspected) is bridged: the peer is held and reconnected', async () => {
    const [h, [b]] = await watched(1)
    const held = new Promise(resolve => { h.node.services.reconnector.addEventListener('peer:held', resolve, { once: true }) })

    await broadcasterOf(h).cleanup(b.peerId, 'stale-connection-suspected')
    await held
    await h.advance(defaults.toleranceWindow + defaults.initialDelay * 2, () => h.count('peer:recovered') === 1)

    expect(h.dialsTo(b.peerId)).to.have.lengthOf(1)
    expect(detailsOf(h, 'peer:recovered')[0]).to.include({ how: 'reconnected', attempts: 1 })
    expect(h.count('peer:removed')).to.equal(0)
    expect(h.node.services.reconnector.state(b.peerId)).to.equal('connected')
    expect(h.node.getConnections(b.peerId)).to.have.lengthOf(1)
  })

  it('a peer that connects again after the cleanup let go of it is adopted afresh', async () => {
    const [h, [b]] = await watched(1)
    const gone = offline(h, b.peerId)
    await broadcasterOf(h).cleanup(b.peerId, 'manual')
    await gone

    await connect(b.node, h.node)
    expect(h.node.services.reconnector.state(b.peerId)).to.equal('connected')
    await hangUp(h, b.node)
    expect(h.node.services.reconnector.state(b.peerId)).to.equal('held')
    expect(eventsOf(h, b.peerId)).to.deep.equal(['peer:online', 'peer:removed', 'peer:offline', 'peer:online', 'peer:held'])
  })
})
