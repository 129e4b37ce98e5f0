import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { connect, createFakeClock, createNode, createNodes, disconnect, expectNoLeaks, onceEvent, stopAll } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { watermarkConnectionManager } from '../src/index.ts'
import { collect, createHub, nextEvent } from './helpers.ts'
import type { Hub } from './helpers.ts'
import type { WatermarkConnectionManagerInit } from '../src/index.ts'
import type { CleanupBroadcaster, DecayingValue, HoldfastEvents } from '@holdfast/interface'
import type { FakeClock } from '@holdfast/test-utils'
import type { Libp2p, Stream } from '@libp2p/interface'

const keepValue = (v: DecayingValue): { value: number, remove: boolean } => ({ value: v.value, remove: false })
const sameValue = (v: DecayingValue): number => v.value
const toInfinity = (): number => Number.POSITIVE_INFINITY

/** While started, the service holds its three node listeners and its gater; nothing else once peers are gone */
const WHILE_STARTED = ['nodeListeners', 'gater']

describe('watermark connection manager on real nodes (memory transport)', () => {
  let hub: Hub | undefined
  let peers: Libp2p[] = []
  let clock: FakeClock

  beforeEach(() => {
    clock = createFakeClock()
  })

  afterEach(async () => {
    await stopAll([hub, ...peers])
    if (hub != null) {
      expectNoLeaks(hub.services.connections, ['protected', 'decayingTags'])
    }
    hub = undefined
    peers = []
  })

  /** Creates the hub (kept in `hub`) and returns its services */
  async function hubWith (init: WatermarkConnectionManagerInit): Promise<Hub['services']> {
    hub = await createHub({ clock, ...init })
    return hub.services
  }

  async function dialIn (count: number): Promise<Libp2p[]> {
    const created = await createNodes(count)
    peers.push(...created)
    for (const peer of created) {
      await connect(peer, hub as Hub)
    }
    return created
  }

  describe('configuration', () => {
    const bad: Array<[string, WatermarkConnectionManagerInit, string]> = [
      ['lowWater = highWater', { lowWater: 10, highWater: 10 }, 'highWater'],
      ['lowWater > highWater', { lowWater: 20, highWater: 10 }, 'highWater'],
      ['negative lowWater', { lowWater: -1, highWater: 10 }, 'lowWater'],
      ['zero lowWater', { lowWater: 0, highWater: 10 }, 'lowWater'],
      ['NaN highWater', { lowWater: 1, highWater: Number.NaN }, 'highWater'],
      ['fractional lowWater', { lowWater: 1.5, highWater: 10 }, 'lowWater'],
      ['negative gracePeriod', { gracePeriod: -1 }, 'gracePeriod'],
      ['NaN silencePeriod', { silencePeriod: Number.NaN }, 'silencePeriod'],
      ['negative maxInbound', { maxInbound: -5 }, 'maxInbound'],
      ['NaN maxOutbound', { maxOutbound: Number.NaN }, 'maxOutbound'],
      ['zero idleTimeout', { idleTimeout: 0 }, 'idleTimeout'],
      ['hysteresis beyond the watermarks', { lowWater: 5, highWater: 10, hysteresis: 6 }, 'hysteresis'],
      ['zero hysteresis', { hysteresis: 0 }, 'hysteresis'],
      ['unknown trimMode', { trimMode: 'sawtooth' as 'batch' }, 'trimMode'],
      ['score not a function', { score: 42 as unknown as () => number }, 'score']
    ]
    for (const [name, init, option] of bad) {
      it(`${name} -> InvalidConfigError naming ${option}, at construction`, async () => {
        const err = await createNode({ services: { connections: watermarkConnectionManager(init) } }).then(() => undefined, (e: Error & { option?: string }) => e)
        expect(err).to.have.property('name', 'InvalidConfigError')
        expect(err).to.have.property('option', option)
      })
    }

    it('setLimits applies all or nothing: a bad value throws InvalidArgumentError and changes nothing', async () => {
      const { connections } = await hubWith({ lowWater: 2, highWater: 4, maxInbound: 3 })
      expect(() => { connections.setLimits({ lowWater: 3, highWater: 3 }) }).to.throw().with.property('name', 'InvalidArgumentError')
      expect(() => { connections.setLimits({ maxInbound: -1 }) }).to.throw().with.property('name', 'InvalidArgumentError')
      const before = connections.explainTrim()
      expect(before.target).to.equal(2)
      connections.setLimits({ lowWater: 3, highWater: 6 })
      expect(connections.explainTrim().target).to.equal(3)
    })

    it('bad arguments throw InvalidArgumentError without a state change', async () => {
      const { connections } = await hubWith({})
      const [a] = await dialIn(1)
      expect(() => { connections.protect('peer' as any, 'x') }).to.throw().with.property('name', 'InvalidArgumentError')
      expect(() => { connections.protect(a.peerId, '') }).to.throw().with.property('name', 'InvalidArgumentError')
      expect(() => { connections.tagPeer(a.peerId, 't', Number.NaN) }).to.throw().with.property('name', 'InvalidArgumentError')
      expect(() => { connections.upsertTag(a.peerId, 't', toInfinity) }).to.throw().with.property('name', 'InvalidArgumentError')
      expect(() => connections.registerDecayingTag('d', 0, keepValue, sameValue)).to.throw().with.property('name', 'InvalidArgumentError')
      expect(connections.isProtected(a.peerId)).to.equal(false)
      expect(connections.info(a.peerId)?.tags).to.not.have.property('t')
      expect(connections.internalSizes().decayingTags).to.equal(0)
    })
  })

  describe('protection and tags', () => {
    it('a peer stays protected while any tag protects it; unprotect says whether others remain', async () => {
      const { connections } = await hubWith({})
      const [a] = await dialIn(1)
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
      const { connections } = await hubWith({})
      const [a] = await dialIn(1)
      connections.protect(a.peerId, 'app-protected')
      connections.tagPeer(a.peerId, 'friend', 40)
      expect(connections.info(a.peerId)?.tags.friend).to.equal(40)
      await disconnect(a, hub as Hub)
      expect(connections.isProtected(a.peerId)).to.equal(true)
      expect(connections.info(a.peerId)).to.equal(undefined)
      await connect(a, hub as Hub)
      expect(connections.info(a.peerId)?.tags).to.not.have.property('friend')
      expect(connections.info(a.peerId)?.protections).to.deep.equal(['app-protected'])
      connections.unprotect(a.peerId, 'app-protected')
    })

    it('the score is the seed formula: tag sum, +10 with an outbound connection, +20 with an open stream', async () => {
      const { connections } = await hubWith({})
      const [a, b] = await dialIn(2)
      await (hub as Hub).handle('/hold/1', () => {})
      await a.handle('/hold/1', () => {})
      connections.tagPeer(a.peerId, 'x', 5)
      connections.upsertTag(a.peerId, 'x', old => old + 2)
      connections.tagPeer(b.peerId, 'y', 1)
      connections.untagPeer(b.peerId, 'y')
      // an outbound connection from the hub to a, with a stream held open on it
      const outbound = await (hub as Hub).dial(a.getMultiaddrs(), { force: true })
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
      const { connections } = await hubWith({ lowWater: 1, highWater: 3, gracePeriod: 0, silencePeriod: 60_000, score: byTag })
      await connections.trim() // starts the silence period: no automatic trim in this test
      const [a, b, c] = await dialIn(3)
      connections.tagPeer(a.peerId, 'rank', 1)
      connections.tagPeer(b.peerId, 'rank', 3)
      connections.tagPeer(c.peerId, 'rank', 2)
      const plan = connections.explainTrim()
      expect(plan.close.map(p => p.peer.toString())).to.deep.equal([b.peerId.toString(), c.peerId.toString()])
      expect(plan.close[0].score).to.equal(-3)
      expect(plan.close[0].parts).to.include({ tags: 3, outbound: 0 }) // streams: identify may still run
    })
  })

  describe('watermarks, grace and silence (fake clock)', () => {
    it('peers inside the grace period are not trimmed; the trim runs when the first grace ends', async () => {
      const { connections } = await hubWith({ lowWater: 2, highWater: 4, gracePeriod: 30_000, silencePeriod: 10_000 })
      const firstTrim = nextEvent(hub as Hub, 'trim:completed')
      await dialIn(5)
      const first = await firstTrim
      // every peer is in grace: nothing closed, the whole excess is the shortfall
      expect(first.closed).to.have.lengthOf(0)
      expect(first.shortfall).to.equal(3)
      expect(connections.explainTrim().gracePeers).to.equal(5)
      expect(connections.internalSizes().timers).to.equal(2) // idle sweep + the grace re-check

      await clock.tickAsync(29_999)
      expect(connections.stats().trims).to.equal(1)
      const secondTrim = nextEvent(hub as Hub, 'trim:completed')
      await clock.tickAsync(1)
      const second = await secondTrim
      expect(second.closed).to.have.lengthOf(3)
      expect(second.after).to.equal(2)
      expect((hub as Hub).getConnections()).to.have.lengthOf(2)
    })

    it('at most one automatic trim per silence period; the deferred one runs when it ends', async () => {
      const { connections } = await hubWith({ lowWater: 2, highWater: 4, gracePeriod: 0, silencePeriod: 10_000 })
      const firstTrim = nextEvent(hub as Hub, 'trim:completed')
      await dialIn(5)
      expect((await firstTrim).after).to.equal(2)

      await dialIn(3) // 5 again, inside the silence period
      expect(connections.stats().trims).to.equal(1)
      expect(connections.stats().connections).to.equal(5)
      await clock.tickAsync(9_000)
      expect(connections.stats().trims).to.equal(1)
      const secondTrim = nextEvent(hub as Hub, 'trim:completed')
      await clock.tickAsync(1_000)
      const second = await secondTrim
      expect(second.before).to.equal(5)
      expect(second.after).to.equal(2)
      expect(connections.stats().trims).to.equal(2)
    })

    it('a manual trim ignores the silence period and goes to lowWater', async () => {
      const { connections } = await hubWith({ lowWater: 2, highWater: 10, gracePeriod: 0, silencePeriod: 60_000 })
      await dialIn(6)
      const report = await connections.trim()
      expect(report).to.include({ trigger: 'manual', before: 6, after: 2, target: 2, closedConnections: 4, shortfall: 0 })
      const again = await connections.trim()
      expect(again.closed).to.have.lengthOf(0)
    })

    it('trim reports the shortfall when protected peers alone exceed lowWater, and closes every other peer, lowest score first', async () => {
      const { connections } = await hubWith({ lowWater: 2, highWater: 10, gracePeriod: 0 })
      const nodes = await dialIn(8)
      for (const node of nodes.slice(0, 4)) {
        connections.protect(node.peerId, 'app-protected')
      }
      // 30 apart, so a streams bonus (20) cannot reorder them: closing order 5, 7, 4, 6
      const values = [60, 0, 90, 30]
      nodes.slice(4).forEach((node, i) => { connections.tagPeer(node.peerId, 'app', values[i]) })
      const expected = [5, 7, 4, 6].map(i => nodes[i].peerId)
      expect(connections.explainTrim().close.map(c => c.peer)).to.deep.equal(expected)
      const closedByManager = collect(hub as Hub, 'connection:closed-by-manager')
      const report = await connections.trim()
      closedByManager.stop()
      expect(report.closed).to.deep.equal(expected)
      expect(report.after).to.equal(4)
      expect(report.shortfall).to.equal(2)
      expect(closedByManager.events).to.deep.equal(expected.map(peer => ({ peer, reason: 'trim' })))
      expect(connections.stats().closed).to.deep.equal({ trim: 4, idle: 0, limit: 0 })
      for (const node of nodes.slice(0, 4)) {
        connections.unprotect(node.peerId, 'app-protected')
      }
    })

    it('incremental mode keeps the count between highWater - hysteresis and highWater under steady churn', async () => {
      const highWater = 10
      const hysteresis = 3
      const { connections } = await hubWith({ lowWater: 2, highWater, hysteresis, trimMode: 'incremental', gracePeriod: 0, silencePeriod: 0 })
      await dialIn(highWater)
      let lowest = Infinity
      const onClose = (): void => { lowest = Math.min(lowest, (hub as Hub).getConnections().length) }
      ;(hub as Hub).addEventListener('connection:close', onClose)
      const reports = collect(hub as Hub, 'trim:completed')
      for (let round = 0; round < 12; round++) {
        const trimmed = connections.stats().connections >= highWater ? nextEvent(hub as Hub, 'trim:completed') : undefined
        await dialIn(1)
        await trimmed
        const count = (hub as Hub).getConnections().length
        expect(count).to.be.within(highWater - hysteresis, highWater)
      }
      (hub as Hub).removeEventListener('connection:close', onClose)
      reports.stop()
      expect(reports.events.length).to.be.greaterThan(2)
      for (const report of reports.events) {
        expect(report.after).to.equal(highWater - hysteresis)
      }
      expect(lowest).to.equal(highWater - hysteresis)
    })
  })

  describe('per-direction limits', () => {
    it('maxInbound: the excess inbound connection is refused before any stream can be opened on it; a protected peer still gets in', async () => {
      const { connections } = await hubWith({ maxInbound: 2 })
      const streamsFrom = new Map<string, number>()
      await (hub as Hub).handle('/probe/1', (stream, connection) => {
        const key = connection.remotePeer.toString()
        streamsFrom.set(key, (streamsFrom.get(key) ?? 0) + 1)
        stream.close().catch(() => {})
      })
      const [a, b] = await dialIn(2)
      const [c, d] = await createNodes(2)
      peers.push(c, d)
      const opened: string[] = []
      const onOpen = (evt: CustomEvent<{ remotePeer: { toString(): string } }>): void => { opened.push(evt.detail.remotePeer.toString()) }
      ;(hub as Hub).addEventListener('connection:open', onOpen)

      const exceeded = nextEvent(hub as Hub, 'limit:exceeded')
      const dial = c.dial((hub as Hub).getMultiaddrs()).then(async conn => conn.newStream('/probe/1'))
      await expect(dial).to.eventually.be.rejected()
      expect(await exceeded).to.deep.equal({ direction: 'inbound', peer: c.peerId })
      expect(opened).to.not.include(c.peerId.toString())
      expect(streamsFrom.get(c.peerId.toString())).to.equal(undefined)
      expect((hub as Hub).getConnections(c.peerId)).to.have.lengthOf(0)

      connections.protect(d.peerId, 'realm-member')
      await connect(d, hub as Hub)
      const stream = await d.dialProtocol((hub as Hub).getMultiaddrs(), '/probe/1')
      await stream.close()
      expect(connections.stats()).to.deep.include({ inbound: 3, refused: { inbound: 1, outbound: 0 } })
      expect((hub as Hub).getConnections(a.peerId)).to.have.lengthOf(1)
      expect((hub as Hub).getConnections(b.peerId)).to.have.lengthOf(1)
      ;(hub as Hub).removeEventListener('connection:open', onOpen)
      connections.unprotect(d.peerId, 'realm-member')
    })

    it('maxOutbound: a dial over the limit rejects with ConnectionLimitError, except to a protected peer', async () => {
      const { connections } = await hubWith({ maxOutbound: 1 })
      const [a, b, c] = await createNodes(3)
      peers.push(a, b, c)
      await connect(hub as Hub, a)
      const exceeded = nextEvent(hub as Hub, 'limit:exceeded')
      await expect((hub as Hub).dial(b.getMultiaddrs())).to.eventually.be.rejected().with.property('name', 'ConnectionLimitError')
      expect(await exceeded).to.deep.equal({ direction: 'outbound', peer: b.peerId })
      expect((hub as Hub).getConnections(b.peerId)).to.have.lengthOf(0)

      connections.protect(c.peerId, 'relay-active')
      await connect(hub as Hub, c)
      expect(connections.stats()).to.deep.include({ outbound: 2, refused: { inbound: 0, outbound: 1 } })
      connections.unprotect(c.peerId, 'relay-active')
    })

    it('the node gater is chained, not replaced: its own denials still apply, and it is restored on stop', async () => {
      const [blocked] = await createNodes(1)
      peers.push(blocked)
      const gater = { denyDialPeer: (peer: { equals(o: unknown): boolean }) => peer.equals(blocked.peerId) }
      hub = await createHub({ clock, maxOutbound: 5 }, { connectionGater: gater as any })
      await expect(hub.dial(blocked.getMultiaddrs())).to.eventually.be.rejected().with.property('name', 'DialDeniedError')
      const components = (hub as any).components
      expect(components.connectionGater).to.not.equal(gater)
      await hub.stop()
      expect(components.connectionGater).to.equal(gater)
    })
  })

  describe('idle timeout (fake clock)', () => {
    it('closes only unprotected connections without streams', async () => {
      const { connections } = await hubWith({ idleTimeout: 40_000, gracePeriod: 0 })
      const [idle, protectedPeer, busy] = await createNodes(3)
      peers.push(idle, protectedPeer, busy)
      await busy.handle('/hold/1', () => {}) // never closes its side
      for (const node of [idle, protectedPeer, busy]) {
        const identified = onceEvent(hub as Hub, 'peer:identify', r => r.peerId.equals(node.peerId))
        await connect(node, hub as Hub)
        await identified
      }
      connections.protect(protectedPeer.peerId, 'app-protected')
      const stream = await (hub as Hub).dialProtocol(busy.peerId, '/hold/1')
      const closed = nextEvent(hub as Hub, 'connection:closed-by-manager')
      const gone = onceEvent(hub as Hub, 'peer:disconnect', p => p.equals(idle.peerId))
      // never before idleTimeout; the sweep samples every idleTimeout / 4, so a connection whose
      // last stream was still closing at a sweep is closed by two sweeps after idleTimeout at most
      await clock.tickAsync(39_999)
      expect(connections.stats().closed.idle).to.equal(0)
      await clock.tickAsync(20_001)
      expect(await closed).to.deep.equal({ peer: idle.peerId, reason: 'idle' })
      await gone
      await clock.tickAsync(120_000)
      expect((hub as Hub).getConnections(protectedPeer.peerId)).to.have.lengthOf(1)
      expect((hub as Hub).getConnections(busy.peerId)).to.have.lengthOf(1)
      expect(connections.stats().closed).to.deep.equal({ trim: 0, idle: 1, limit: 0 })
      stream.abort(new Error('done'))
      connections.unprotect(protectedPeer.peerId, 'app-protected')
    })
  })

  describe('events and bookkeeping', () => {
    it('publishes its events through the cleanup broadcaster when one is present', async () => {
      const node = await createNode({
        services: { broadcaster: cleanupBroadcaster(), connections: watermarkConnectionManager({ clock, lowWater: 1, highWater: 2, gracePeriod: 0 }) },
        config: { connectionMonitor: { enabled: false } }
      })
      hub = node as unknown as Hub
      const broadcaster = (node.services as { broadcaster: CleanupBroadcaster }).broadcaster
      const seen: Array<keyof HoldfastEvents> = []
      broadcaster.subscribe('*', (event) => { seen.push(event.type) })
      const completed = new Promise<HoldfastEvents['trim:completed']>(resolve => broadcaster.subscribe('trim:completed', ({ detail }) => { resolve(detail) }))
      await dialIn(3)
      const detail = await completed
      expect(detail.after).to.equal(1)
      expect(seen).to.include.members(['trim:started', 'trim:completed', 'connection:closed-by-manager'])
    })

    it('no per-peer entry, timer or decaying value is left after every peer disconnects, nor anything after stop', async () => {
      const { connections } = await hubWith({ idleTimeout: 60_000 })
      const tag = connections.registerDecayingTag('seen', 1_000, v => ({ value: v.value - 1, remove: v.value <= 1 }), (v, d) => v.value + d)
      const nodes = await dialIn(6)
      for (const node of nodes) {
        connections.tagPeer(node.peerId, 'x', 3)
        tag.bump(node.peerId, 5)
      }
      connections.protect(nodes[0].peerId, 'app-protected')
      expect(connections.internalSizes()).to.include({ peers: 6, connections: 6, decayingValues: 6, timers: 1 })
      for (const node of nodes) {
        await disconnect(node, hub as Hub)
      }
      expectNoLeaks(connections, [...WHILE_STARTED, 'protected', 'decayingTags'])
      expect(connections.internalSizes()).to.include({ protected: 1, decayingTags: 1, nodeListeners: 3, gater: 1 })
      connections.unprotect(nodes[0].peerId, 'app-protected')
      tag.close()
      await (hub as Hub).stop()
      expectNoLeaks(connections)
    })
  })
})
