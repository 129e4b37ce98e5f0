import { connect, createFakeClock, createNodes, expectNoLeaks, onceEvent, stopAll } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { createHub, nextEvent } from './helpers.ts'
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

describe('trim of one hub with 250 peers dialing in (real nodes, memory transport, fake clock)', function () {
  this.timeout(120_000)
  let hub: Hub
  let nodes: Libp2p[] = []

  after(async () => {
    await stopAll([hub, ...nodes])
    expectNoLeaks(hub.services.connections, ['protected'])
  })

  it('highWater 200 / lowWater 100: keeps every protected and in-grace peer, closes exactly the lowest scores explainTrim() named', async () => {
    const clock = createFakeClock()
    hub = await createHub({ clock, lowWater: 100, highWater: 200, gracePeriod: 30_000, silencePeriod: 60_000 }, {
      connectionManager: { maxIncomingPendingConnections: PARALLEL * 2 }
    })
    const { connections } = hub.services
    await connections.trim() // a (no-op) trim at t0 opens a silence period: the automatic trim waits for t0 + 60 s
    nodes = await createNodes(PEERS)
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
