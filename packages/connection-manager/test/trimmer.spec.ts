import { connect, onceEvent } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { collect, HubFixture, nextEvent } from './helpers.ts'
import type { Hub } from './helpers.ts'
import type { Libp2p } from '@libp2p/interface'

const PEERS = 250
const LATE = 50
const PROTECTED = 20
/** dials in flight at once, under the hub's maxIncomingPendingConnections */
const PARALLEL = 25

/** Dials every node into the hub, PARALLEL at a time, and waits until the hub identified each one */
async function dialInAll (hub: Hub, nodes: Libp2p[]): Promise<void> {
  for (let i = 0; i < nodes.length; i += PARALLEL) {
    await Promise.all(nodes.slice(i, i + PARALLEL).map(async node => {
      const identified = onceEvent(hub, 'peer:identify', r => r.peerId.equals(node.peerId))
      await connect(node, hub)
      await identified
    }))
  }
}

describe('trimming (real nodes, memory transport)', () => {
  const f = new HubFixture()

  describe('watermarks, grace and silence (fake clock)', () => {
    it('peers inside the grace period are not trimmed; the trim runs when the first grace ends', async () => {
      const { connections } = await f.hubWith({ lowWater: 2, highWater: 4, gracePeriod: 30_000, silencePeriod: 10_000 })
      const firstTrim = nextEvent(f.hub, 'trim:completed')
      await f.dialIn(5)
      const first = await firstTrim
      // every peer is in grace: nothing closed, the whole excess is the shortfall
      expect(first.closed).to.have.lengthOf(0)
      expect(first.shortfall).to.equal(3)
      expect(connections.explainTrim().gracePeers).to.equal(5)
      expect(connections.internalSizes().timers).to.equal(2) // idle sweep + the grace re-check

      await f.clock.tickAsync(29_999)
      expect(connections.stats().trims).to.equal(1)
      const secondTrim = nextEvent(f.hub, 'trim:completed')
      await f.clock.tickAsync(1)
      const second = await secondTrim
      expect(second.closed).to.have.lengthOf(3)
      expect(second.after).to.equal(2)
      expect(f.hub.getConnections()).to.have.lengthOf(2)
    })

    it('at most one automatic trim per silence period; the deferred one runs when it ends', async () => {
      const { connections } = await f.hubWith({ lowWater: 2, highWater: 4, gracePeriod: 0, silencePeriod: 10_000 })
      const firstTrim = nextEvent(f.hub, 'trim:completed')
      await f.dialIn(5)
      expect((await firstTrim).after).to.equal(2)

      await f.dialIn(3) // 5 again, inside the silence period
      expect(connections.stats().trims).to.equal(1)
      expect(connections.stats().connections).to.equal(5)
      await f.clock.tickAsync(9_000)
      expect(connections.stats().trims).to.equal(1)
      const secondTrim = nextEvent(f.hub, 'trim:completed')
      await f.clock.tickAsync(1_000)
      const second = await secondTrim
      expect(second.before).to.equal(5)
      expect(second.after).to.equal(2)
      expect(connections.stats().trims).to.equal(2)
    })

    it('a manual trim ignores the silence period and goes to lowWater', async () => {
      const { connections } = await f.hubWith({ lowWater: 2, highWater: 10, gracePeriod: 0, silencePeriod: 60_000 })
      await f.dialIn(6)
      const report = await connections.trim()
      expect(report).to.include({ trigger: 'manual', before: 6, after: 2, target: 2, closedConnections: 4, shortfall: 0 })
      const again = await connections.trim()
      expect(again.closed).to.have.lengthOf(0)
    })

    it('trim reports the shortfall when protected peers alone exceed lowWater, and closes every other peer, lowest score first', async () => {
      const { connections } = await f.hubWith({ lowWater: 2, highWater: 10, gracePeriod: 0 })
      const nodes = await f.dialIn(8)
      for (const node of nodes.slice(0, 4)) {
        connections.protect(node.peerId, 'app-protected')
      }
      // 30 apart, so a streams bonus (20) cannot reorder them: closing order 5, 7, 4, 6
      const values = [60, 0, 90, 30]
      nodes.slice(4).forEach((node, i) => { connections.tagPeer(node.peerId, 'app', values[i]) })
      const expected = [5, 7, 4, 6].map(i => nodes[i].peerId)
      expect(connections.explainTrim().close.map(c => c.peer)).to.deep.equal(expected)
      const closedByManager = collect(f.hub, 'connection:closed-by-manager')
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
      const { connections } = await f.hubWith({ lowWater: 2, highWater, hysteresis, trimMode: 'incremental', gracePeriod: 0, silencePeriod: 0 })
      await f.dialIn(highWater)
      let lowest = Infinity
      const onClose = (): void => { lowest = Math.min(lowest, f.hub.getConnections().length) }
      f.hub.addEventListener('connection:close', onClose)
      const reports = collect(f.hub, 'trim:completed')
      for (let round = 0; round < 12; round++) {
        const trimmed = connections.stats().connections >= highWater ? nextEvent(f.hub, 'trim:completed') : undefined
        await f.dialIn(1)
        await trimmed
        const count = f.hub.getConnections().length
        expect(count).to.be.within(highWater - hysteresis, highWater)
      }
      f.hub.removeEventListener('connection:close', onClose)
      reports.stop()
      expect(reports.events.length).to.be.greaterThan(2)
      for (const report of reports.events) {
        expect(report.after).to.equal(highWater - hysteresis)
      }
      expect(lowest).to.equal(highWater - hysteresis)
    })
  })

  describe('one hub with 250 peers dialing in (fake clock)', function () {
    this.timeout(120_000)

    it('highWater 200 / lowWater 100: keeps every protected and in-grace peer, closes exactly the lowest scores explainTrim() named', async () => {
      const { clock } = f
      const { connections } = await f.hubWith({ lowWater: 100, highWater: 200, gracePeriod: 30_000, silencePeriod: 60_000 }, {
        connectionManager: { maxIncomingPendingConnections: PARALLEL * 2 }
      })
      const { hub } = f
      await connections.trim() // a (no-op) trim at t0 opens a silence period: the automatic trim waits for t0 + 60 s
      const nodes = await f.nodes(PEERS)
      const early = nodes.slice(0, PEERS - LATE)
      const late = nodes.slice(PEERS - LATE)

      await dialInAll(hub, early)
      const isProtected = new Set(early.slice(0, PROTECTED).map(n => n.peerId.toString()))
      early.forEach((node, i) => {
        if (i < PROTECTED) {
          connections.protect(node.peerId, i % 2 === 0 ? 'realm-member' : 'relay-active')
        } else {
          connections.tagPeer(node.peerId, 'app', (i * 37) % 50) // spread values, many ties
        }
      })

      await clock.tickAsync(31_000) // the early peers leave their grace period
      await dialInAll(hub, late)
      expect(connections.stats().connections).to.equal(PEERS)
      expect(connections.stats().trims).to.equal(1) // the silence period holds the automatic one

      const plan = connections.explainTrim()
      expect(plan).to.include({ connections: PEERS, target: 100, protectedPeers: PROTECTED, gracePeers: LATE, after: 100, shortfall: 0 })
      expect(plan.close).to.have.lengthOf(PEERS - 100)
      const planned = plan.close.map(c => c.peer.toString())
      expect(planned.some(p => isProtected.has(p))).to.equal(false)

      const completed = nextEvent(hub, 'trim:completed')
      await clock.tickAsync(29_000) // t0 + 60 s: the silence period ends
      const report = await completed
      expect(report.closed.map(String)).to.deep.equal(planned)
      expect(report).to.include({ before: PEERS, after: 100, shortfall: 0 })

      const left = hub.getConnections()
      expect(left.length).to.be.at.most(100 + PROTECTED + LATE)
      const connected = new Set(left.map(c => c.remotePeer.toString()))
      for (const node of [...early.slice(0, PROTECTED), ...late]) {
        expect(connected.has(node.peerId.toString()), `${node.peerId.toString()} protected or in grace`).to.equal(true)
      }
      // every closed peer scored at most what any kept, trimmable peer scores
      const keptScores = early.slice(PROTECTED).filter(n => connected.has(n.peerId.toString())).map(n => connections.info(n.peerId)?.score ?? Number.NaN)
      const closedMax = Math.max(...plan.close.map(c => c.score))
      expect(keptScores).to.have.lengthOf(100 - PROTECTED - LATE)
      expect(Math.min(...keptScores)).to.be.at.least(closedMax)

      for (const node of early.slice(0, PROTECTED)) {
        connections.unprotect(node.peerId, 'realm-member')
        connections.unprotect(node.peerId, 'relay-active')
      }
    })
  })
})
