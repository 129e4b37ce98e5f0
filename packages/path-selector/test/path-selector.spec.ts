import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { watermarkConnectionManager } from '@holdfast/connection-manager'
import { TAGS } from '@holdfast/interface'
import { createFakeClock, createNode, expectNoLeaks, onceEvent, stopAll } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { pathSelector } from '../src/index.ts'
import { ECHO, circuitAddrs, createPeer, createRelay, directAddrs, echo, forPeer, onceServiceEvent } from './fixtures.ts'
import type { PeerNode, RelayNode } from './fixtures.ts'
import type { PathSelectorInit } from '../src/index.ts'
import type { CleanupBroadcaster, HoldfastEvent, WatermarkConnectionManager } from '@holdfast/interface'
import type { Connection, PeerId, Stream } from '@libp2p/interface'

const connectionOf = (node: PeerNode, peer: PeerId, stream: Stream): Connection | undefined => node.getConnections(peer).find(c => c.streams.some(s => s.id === stream.id))

describe('path selector (TCP on 127.0.0.1, circuit relay v2)', () => {
  let relay: RelayNode | undefined
  let a: PeerNode | undefined
  let b: PeerNode | undefined

  // upgrade off: these peers have direct TCP addresses; the WebRTC upgrade is tested in upgrade.spec.ts
  async function setup (init: PathSelectorInit = {}): Promise<{ relay: RelayNode, a: PeerNode, b: PeerNode }> {
    relay = await createRelay()
    a = await createPeer(relay, { reach: 'direct', init: { upgrade: false, ...init } })
    b = await createPeer(relay, { reach: 'direct', init: { upgrade: false } })
    return { relay, a, b }
  }

  afterEach(async () => {
    await stopAll([a, b, relay])
    if (a != null) {
      expectNoLeaks(a.services.paths)
    }
    a = b = relay = undefined
  })

  it('connects relay-first when only relay addresses are known, tracks the path and opens streams over it; its events also go through the broadcaster', async () => {
    relay = await createRelay()
    a = await createPeer(relay, { reach: 'direct', init: { upgrade: false }, services: { broadcaster: cleanupBroadcaster() } })
    b = await createPeer(relay, { reach: 'direct', init: { upgrade: false } })
    const published: Array<HoldfastEvent<'path:changed'>> = []
    ;(a.services as unknown as { broadcaster: CleanupBroadcaster }).broadcaster.subscribe('path:changed', event => { published.push(event) })
    const changed = onceServiceEvent(a.services.paths, 'path:changed', forPeer(b.peerId))

    const connection = await a.services.paths.connect(b.peerId, { addrs: circuitAddrs(b) })

    expect(connection.direct).to.equal(false)
    expect(await changed).to.deep.include({ from: undefined, to: 'relay-only', best: 'relayed' })
    expect(published.some(e => e.detail.peer.equals(b?.peerId) && e.detail.to === 'relay-only')).to.equal(true)
    expect(a.services.paths.mode(b.peerId)).to.equal('relay-only')
    const [path] = a.services.paths.paths(b.peerId)
    expect(path).to.deep.include({ connectionId: connection.id, kind: 'relayed', transport: 'p2p-circuit', status: 'active', holePunched: false })
    // connect resolved after a ping on the connection: one success and a measured RTT
    expect(path.successes).to.be.at.least(1)
    expect(path.rttMs).to.be.a('number')
    // an already healthy path is reused
    expect((await a.services.paths.connect(b.peerId)).id).to.equal(connection.id)

    const stream = await a.services.paths.openStream(b.peerId, ECHO)
    expect(connectionOf(a, b.peerId, stream)?.id).to.equal(connection.id)
    expect(await echo(stream)).to.equal('hello holdfast')
  })

  it('a direct path takes over (direct-primary), the relayed one stays as a tagged, protected backup; when the direct one closes it falls back to the relay', async () => {
    relay = await createRelay()
    // the holdfast connection manager, found by capability among the node's services
    a = await createPeer(relay, { reach: 'direct', init: { upgrade: false }, services: { watermark: watermarkConnectionManager() } })
    const cm = (a.services as unknown as { watermark: WatermarkConnectionManager }).watermark
    b = await createPeer(relay, { reach: 'direct', init: { upgrade: false } })

    const relayed = await a.services.paths.connect(b.peerId, { addrs: circuitAddrs(b) })
    const upgraded = onceServiceEvent(a.services.paths, 'path:upgraded', forPeer(b.peerId))
    const changed = onceServiceEvent(a.services.paths, 'path:changed', d => forPeer(b?.peerId as PeerId)(d) && d.to === 'direct-primary')
    const direct = await a.dial(directAddrs(b))

    expect(direct.direct).to.not.equal(false)
    expect(await changed).to.deep.include({ from: 'relay-only', to: 'direct-primary', best: 'direct' })
    expect((await upgraded).durationMs).to.be.a('number')
    expect(a.services.paths.best(b.peerId)?.connectionId).to.equal(direct.id)
    expect(a.services.paths.paths(b.peerId).map(p => p.kind)).to.deep.equal(['relayed', 'direct'])
    // a direct connection opened beside a relayed one counts as made through the relay
    expect(a.services.paths.best(b.peerId)?.holePunched).to.equal(true)
    expect(relayed.status).to.equal('open')
    expect(cm.isProtected(b.peerId, TAGS.relayBackup)).to.equal(true)
    await waitForTag(a, b.peerId, true)

    const stream = await a.services.paths.openStream(b.peerId, ECHO)
    expect(connectionOf(a, b.peerId, stream)?.id).to.equal(direct.id)
    expect(await echo(stream)).to.equal('hello holdfast')

    const fellBack = onceServiceEvent(a.services.paths, 'path:fallback', forPeer(b.peerId))
    await direct.close()
    await fellBack
    expect(a.services.paths.mode(b.peerId)).to.equal('fallback')
    const again = await a.services.paths.openStream(b.peerId, ECHO)
    expect(connectionOf(a, b.peerId, again)?.id).to.equal(relayed.id)
    expect(await echo(again, 'over the relay')).to.equal('over the relay')

    // the last path goes: the peer's record, the protection and the tag go with it
    const gone = onceEvent(a, 'peer:disconnect', p => p.equals(b?.peerId as PeerId))
    await a.hangUp(b.peerId)
    await gone
    expect(a.services.paths.mode(b.peerId)).to.equal(undefined)
    expect(cm.isProtected(b.peerId, TAGS.relayBackup)).to.equal(false)
    await waitForTag(a, b.peerId, false)
    expect(a.services.paths.paths(b.peerId)).to.deep.equal([])
    expect(a.services.paths.internalSizes()).to.deep.include({ peers: 1, paths: 1, upgrades: 0 }) // the relay only
  })

  it('openStream falls back to the next path when the best one cannot open a stream, and counts the failure', async () => {
    const { a, b } = await setup()
    const relayed = await a.services.paths.connect(b.peerId, { addrs: circuitAddrs(b) })
    const direct = await a.dial(directAddrs(b))
    expect(a.services.paths.best(b.peerId)?.connectionId).to.equal(direct.id)
    // one outbound stream per connection and protocol: the direct path cannot open a second
    await a.unhandle(ECHO)
    await a.handle(ECHO, () => {}, { maxOutboundStreams: 1, runOnLimitedConnection: true })
    const held = await direct.newStream(ECHO)

    const stream = await a.services.paths.openStream(b.peerId, ECHO)

    expect(connectionOf(a, b.peerId, stream)?.id).to.equal(relayed.id)
    expect(await echo(stream)).to.equal('hello holdfast')
    expect(a.services.paths.paths(b.peerId).find(p => p.connectionId === direct.id)?.failures).to.equal(1)
    held.abort(new Error('done'))
  })

  it('demotes a path after failuresToDemote failed samples, and a success brings it back', async () => {
    const { a, b } = await setup({ failuresToDemote: 2 })
    await a.services.paths.connect(b.peerId, { addrs: circuitAddrs(b) })
    const direct = await a.dial(directAddrs(b))
    expect(a.services.paths.mode(b.peerId)).to.equal('direct-primary')

    a.services.paths.report(b.peerId, direct.id, { success: false })
    expect(a.services.paths.mode(b.peerId)).to.equal('direct-primary')
    const fellBack = onceServiceEvent(a.services.paths, 'path:fallback', forPeer(b.peerId))
    a.services.paths.report(b.peerId, direct.id, { success: false })
    await fellBack
    expect(a.services.paths.mode(b.peerId)).to.equal('fallback')
    expect(a.services.paths.paths(b.peerId).find(p => p.connectionId === direct.id)).to.deep.include({ status: 'failing', failures: 2 })
    // no upgrade retry while the direct path is merely failing: only the heartbeat can revive it
    expect(a.services.paths.internalSizes().timers).to.equal(1) // the heartbeat

    a.services.paths.report(b.peerId, direct.id, { success: true, rttMs: 3 })
    expect(a.services.paths.mode(b.peerId)).to.equal('direct-primary')
    expect(a.services.paths.best(b.peerId)).to.deep.include({ connectionId: direct.id, status: 'active', failures: 0, rttMs: 3 })
  })

  it('rejects a malformed sample with InvalidArgumentError and changes nothing; ignores a sample for a closed path', async () => {
    const { a, b } = await setup()
    const connection = await a.services.paths.connect(b.peerId, { addrs: circuitAddrs(b) })
    const before = a.services.paths.paths(b.peerId)
    for (const bad of [{ success: 'yes' }, { success: true, rttMs: -1 }, { success: true, rttMs: Number.NaN }, null]) {
      expect(() => { a?.services.paths.report(b.peerId, connection.id, bad as any) }).to.throw().with.property('name', 'InvalidArgumentError')
    }
    expect(() => { a?.services.paths.report('not a peer' as any, connection.id, { success: true }) }).to.throw().with.property('name', 'InvalidArgumentError')
    a.services.paths.report(b.peerId, 'no-such-connection', { success: false })
    expect(a.services.paths.paths(b.peerId)).to.deep.equal(before)
  })

  it('the heartbeat pings paths on the injected clock: a demoted path silent for a keep-alive period is pinged and recovers', async () => {
    const clock = createFakeClock()
    // one heartbeat per tick: a ping times out after one heartbeat interval of (fake) time
    const { a, b } = await setup({ clock, preset: { idleTimeoutMs: 60_000, heartbeatIntervalMs: 20_000, keepAlivePeriodMs: 15_000 } })
    await a.services.paths.connect(b.peerId, { addrs: circuitAddrs(b) })
    const direct = await a.dial(directAddrs(b))
    a.services.paths.report(b.peerId, direct.id, { success: false })
    a.services.paths.report(b.peerId, direct.id, { success: false })
    expect(a.services.paths.mode(b.peerId)).to.equal('fallback')
    const before = a.services.paths.paths(b.peerId).map(p => p.successes)
    const recovered = onceServiceEvent(a.services.paths, 'path:changed', d => forPeer(b?.peerId as PeerId)(d) && d.to === 'direct-primary')

    await clock.tickAsync(19_999)
    expect(a.services.paths.mode(b.peerId)).to.equal('fallback')
    // the relayed path in use and the direct one, silent for more than the keep-alive period
    await clock.tickAsync(1)
    await recovered
    expect(a.services.paths.best(b.peerId)).to.deep.include({ connectionId: direct.id, status: 'active', failures: 0 })
    expect(a.services.paths.paths(b.peerId).find(p => p.connectionId === direct.id)?.successes).to.equal((before[1] ?? 0) + 1)
  })

  it('openStream on a peer without a path connects first (racing its direct and relay addresses from the peer store); with no address it fails with AddressRequiredError', async () => {
    const { a, b } = await setup()
    await a.peerStore.merge(b.peerId, { multiaddrs: [...circuitAddrs(b), ...directAddrs(b)] })
    const stream = await a.services.paths.openStream(b.peerId, ECHO)
    expect(a.services.paths.paths(b.peerId)).to.have.length.of.at.least(1)
    expect(await echo(stream)).to.equal('hello holdfast')
    const stranger = await createNode()
    try {
      await expect(a.services.paths.openStream(stranger.peerId, ECHO)).to.eventually.be.rejected().with.property('name', 'AddressRequiredError')
    } finally {
      await stranger.stop()
    }
  })

  it('rejects a bad configuration with InvalidConfigError', async () => {
    const bad: PathSelectorInit[] = [
      { preset: { idleTimeoutMs: 10_000, heartbeatIntervalMs: 1_000, keepAlivePeriodMs: 10_000 } },
      { preset: 'laptop' as 'desktop' },
      { rttAlpha: 0 },
      { failuresToDemote: 0 },
      { localNat: 'cone' as 'none' },
      { retryInitialDelayMs: -1 },
      { upgradeTimeoutMs: Number.POSITIVE_INFINITY }
    ]
    for (const init of bad) {
      await expect(createNode({ services: { paths: pathSelector(init) } }), JSON.stringify(init)).to.eventually.be.rejected().with.property('name', 'InvalidConfigError')
    }
  })

  it('holds nothing after stop', async () => {
    const { a, b } = await setup()
    await a.services.paths.connect(b.peerId, { addrs: circuitAddrs(b) })
    expect(a.services.paths.internalSizes()).to.deep.include({ peers: 2, listeners: 4 }) // b and the relay
    await a.stop()
    expectNoLeaks(a.services.paths)
  })
})

/** Resolves once the relay-backup tag of `peer` in `node`'s peer store is (or is no longer) set */
async function waitForTag (node: PeerNode, peer: PeerId, present: boolean): Promise<void> {
  const has = async (): Promise<boolean> => (await node.peerStore.get(peer)).tags.has(TAGS.relayBackup)
  if (await has() === present) {
    return
  }
  await onceEvent(node, 'peer:update', u => u.peer.id.equals(peer) && u.peer.tags.has(TAGS.relayBackup) === present)
}
