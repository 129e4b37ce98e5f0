import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { createFakeClock } from '@holdfast/test-utils'
import { relayServer } from '@holdfast/test-utils/infrastructure'
import { expect } from 'aegir/chai'
import { pathSelector } from '../src/index.ts'
import { nodesOfEachTest, relayedAddrsOf, relayedNode } from './nodes.ts'
import type { PathSelector } from '../src/index.ts'
import type { CleanupBroadcaster } from '@holdfast/interface'
import type { Libp2p, Startable, Stream } from '@libp2p/interface'

/** libp2p WebRTC's signalling protocol: the upgrade's offer goes over it, through the relay */
const WEBRTC_SIGNALING = '/webrtc-signaling/0.0.1'

type Node = Libp2p<{ broadcaster: CleanupBroadcaster, paths: PathSelector }>

describe('the cleanup backbone (real nodes on 127.0.0.1 TCP, circuit relay v2, WebRTC)', function () {
  this.timeout(30_000)
  const nodes = nodesOfEachTest('paths', 'broadcaster')

  it('a cleanup of the peer aborts the upgrade dial in flight: the upgrade rejects with the cleanup\'s error, the report counts the dial, and nothing is left', async () => {
    const relay = await relayServer()
    nodes.push(relay)
    // the peer takes the WebRTC offer through the relay and never answers: the upgrade's dial hangs
    const b = await relayedNode({ behind: relay })
    nodes.push(b)
    const held: Stream[] = []
    const offered = new Promise<void>(resolve => {
      void b.handle(WEBRTC_SIGNALING, stream => { held.push(stream); resolve() }, { runOnLimitedConnection: true })
    })
    // a fake clock: the upgrade's own timeout cannot be what ends it
    const clock = createFakeClock()
    const a = await relayedNode({ webrtc: true, services: { broadcaster: cleanupBroadcaster(), paths: pathSelector({ upgrade: false, clock }) } }) as unknown as Node
    nodes.push(a)
    const { broadcaster, paths } = a.services
    expect(paths.internalSizes().listeners).to.equal(5) // four node events and the cleanup layer

    await paths.connect(b.peerId, { addrs: relayedAddrsOf(b) })
    expect(paths.mode(b.peerId)).to.equal('relay-only')
    let settled = false
    const upgrading = paths.upgrade(b.peerId)
    upgrading.then(() => { settled = true }, () => { settled = true })
    await offered
    expect(broadcaster.pending(b.peerId)).to.equal(1) // the upgrade's dial, through the broadcaster
    expect(paths.internalSizes()).to.deep.include({ upgrades: 1, inFlight: 1 })

    const report = await broadcaster.cleanup(b.peerId, 'manual')

    // settled before the cleanup had even closed the peer's connections
    expect(settled).to.equal(true)
    const error = await upgrading.then(() => undefined, (err: Error & { reason?: string }) => err)
    expect(error).to.have.property('name', 'ConnectionClosedError')
    expect(error).to.have.property('reason', 'manual')
    expect(report.dialsAborted).to.equal(1)
    expect(report.layers.find(l => l.layer === 'path-selector')).to.deep.include({ ok: true })
    expect(broadcaster.pending(b.peerId)).to.equal(0)
    expect(paths.paths(b.peerId)).to.deep.equal([])
    expect(paths.mode(b.peerId)).to.equal(undefined)
    // the relay's own path is all that is left, with the heartbeat that pings it: the upgrade's timeout is gone
    expect(paths.internalSizes()).to.deep.include({ peers: 1, paths: 1, upgrades: 0, inFlight: 0, timers: 1 })
    expect(clock.countTimers()).to.equal(1)
    for (const stream of held) {
      stream.abort(new Error('done'))
    }
  })

  it('a cleanup drops what the service holds for a peer whose connection stays open, and connect adopts the connection again', async () => {
    const relay = await relayServer()
    nodes.push(relay)
    const b = await relayedNode({ behind: relay })
    nodes.push(b)
    const a = await relayedNode({ services: { broadcaster: cleanupBroadcaster(), paths: pathSelector({ upgrade: false }) } }) as unknown as Node
    nodes.push(a)
    const { broadcaster, paths } = a.services
    const connection = await paths.connect(b.peerId, { addrs: relayedAddrsOf(b) })

    // the reconnector's give-up is a cleanup that leaves the connections to whoever owns them
    broadcaster.publish('peer:removed', { peer: b.peerId, reason: 'unwatched' })
    const { detail } = await new Promise<{ detail: { report: { layers: Array<{ layer: string }> } } }>(resolve => {
      const off = broadcaster.subscribe('peer:cleaned', event => {
        if (event.detail.peer.equals(b.peerId)) {
          off()
          resolve(event)
        }
      })
    })
    expect(detail.report.layers.map(l => l.layer)).to.include('path-selector')
    expect(connection.status).to.equal('open')
    expect(paths.paths(b.peerId)).to.deep.equal([])

    expect((await paths.connect(b.peerId, { addrs: relayedAddrsOf(b) })).id).to.equal(connection.id)
    expect(paths.best(b.peerId)?.connectionId).to.equal(connection.id)
  })

  it('stop removes the cleanup layer: a later cleanup no longer runs it', async () => {
    const a = await relayedNode({ services: { broadcaster: cleanupBroadcaster(), paths: pathSelector() } }) as unknown as Node
    nodes.push(a)
    const { broadcaster, paths } = a.services
    await (paths as unknown as Startable).stop()
    expect(paths.internalSizes().listeners).to.equal(0)
    const report = await broadcaster.cleanup(a.peerId, 'manual')
    expect(report.layers.map(l => l.layer)).to.not.include('path-selector')
  })
})
