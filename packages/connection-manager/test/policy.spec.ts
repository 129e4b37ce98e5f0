import { expect } from 'aegir/chai'
import fc from 'fast-check'
import { IN_GRACE, PROTECTED, TRIMMABLE, autoTrimDue, closingOrder, decayTicks, defaultHysteresis, defaultScore, isIdle, overLimit, planTrim, sortClosing, trimTarget } from '../src/policy.ts'
import type { PlanPeers, Settings } from '../src/policy.ts'
import type { ScoreInput } from '@holdfast/interface'

/** One peer as a test writes it; `columns` turns a list of them into planTrim's input */
interface PlanPeer { key: string, score: number, connections: number, firstSeen: number, protected: boolean, inGrace: boolean }
const peer = (key: string, score: number, extra: Partial<PlanPeer> = {}): PlanPeer => ({ key, score, connections: 1, firstSeen: 0, protected: false, inGrace: false, ...extra })
const columns = (peers: PlanPeer[]): PlanPeers => ({
  keys: peers.map(p => p.key),
  scores: Float64Array.from(peers, p => p.score),
  firstSeen: Float64Array.from(peers, p => p.firstSeen),
  connections: Uint32Array.from(peers, p => p.connections),
  status: Uint8Array.from(peers, p => p.protected ? PROTECTED : p.inGrace ? IN_GRACE : TRIMMABLE)
})
const settings = (s: Partial<Settings> = {}): Settings => ({ lowWater: 100, highWater: 200, gracePeriod: 30_000, silencePeriod: 10_000, maxInbound: Infinity, maxOutbound: Infinity, idleTimeout: 300_000, trimMode: 'batch', hysteresis: 10, ...s })
const input = (s: Partial<ScoreInput>): ScoreInput => ({ peer: undefined as any, tags: {}, protections: [], firstSeen: 0, inGrace: false, connections: 1, inbound: 1, outbound: 0, streams: 0, ...s })

/** The planTrim invariants for one generated population */
function checkPlan (peers: PlanPeer[], target: number): void {
  const total = peers.reduce((n, p) => n + p.connections, 0)
  const cols = columns(peers)
  const plan = planTrim(cols, total, target)
  const closed = new Set(plan.close)
  const trimmable = peers.map((_, i) => i).filter(i => !peers[i].protected && !peers[i].inGrace)
  expect(plan.close.every(i => !peers[i].protected && !peers[i].inGrace)).to.equal(true)
  const untrimmable = total - trimmable.reduce((n, i) => n + peers[i].connections, 0)
  expect(plan.everyTrimmable).to.equal(total > target && trimmable.length > 0 && untrimmable >= target)
  if (plan.everyTrimmable) {
    expect(plan.close).to.deep.equal(trimmable) // chosen without ranking, in row order
  }
  // the closed set is a prefix of the trimmable peers in the documented order, written out here
  // independently of closingOrder: score up, firstSeen down, key up (then input order)
  const byKey = (a: PlanPeer, b: PlanPeer): number => a.key < b.key ? -1 : a.key > b.key ? 1 : 0
  const order = [...trimmable].sort((a, b) => peers[a].score - peers[b].score || peers[b].firstSeen - peers[a].firstSeen || byKey(peers[a], peers[b]) || a - b)
  expect(order.every((row, i) => i === 0 || closingOrder(cols, order[i - 1], row) < 0)).to.equal(true)
  expect(plan.everyTrimmable ? sortClosing(cols, plan.close) : plan.close).to.deep.equal(order.slice(0, plan.close.length))
  const after = total - plan.close.reduce((n, i) => n + peers[i].connections, 0)
  expect(plan.after).to.equal(after)
  if (after > target) {
    expect(closed.size).to.equal(trimmable.length) // short only when nothing trimmable is left
    expect(plan.shortfall).to.equal(after - target)
  } else if (plan.close.length > 0) {
    // it stopped at the first peer that got it to the target
    expect(after + peers[plan.close[plan.close.length - 1]].connections).to.be.greaterThan(target)
  }
}

/**
 * The same population planned twice: with exact scores, and with each score lowered by the
 * row's generated bonus, marked bounded, and made exact again by `exactScore`
 */
function checkBoundedPlan (rows: Array<[PlanPeer, number]>, target: number): void {
  const peers = rows.map(([p]) => p)
  const total = peers.reduce((n, p) => n + p.connections, 0)
  const exact = planTrim(columns(peers), total, target)
  const cols = columns(peers.map((p, i) => ({ ...p, score: p.score - rows[i][1] })))
  cols.bounded = Uint8Array.from(rows, () => 1)
  const scored: number[] = []
  const chosen: number[] = []
  const plan = planTrim(cols, total, target, {
    exactScore: row => { scored.push(row); return peers[row].score },
    onChoose: row => { chosen.push(row) }
  })
  expect(plan).to.deep.equal(exact)
  expect(new Set(scored).size).to.equal(scored.length)
  expect(plan.close.every(row => scored.includes(row) && cols.scores[row] === peers[row].score)).to.equal(true)
  expect(chosen).to.deep.equal(plan.close)
  if (plan.everyTrimmable) {
    expect(sortClosing(cols, plan.close)).to.deep.equal(sortClosing(columns(peers), exact.close))
  }
}

describe('policy', () => {
  it('the default hysteresis never goes below lowWater', () => {
    expect(defaultHysteresis(10, 100, 200)).to.equal(10)
    expect(defaultHysteresis(10, 5, 8)).to.equal(3)
    expect(trimTarget(settings({ trimMode: 'incremental' }))).to.equal(190)
    expect(trimTarget(settings())).to.equal(100)
  })

  it('defaultScore: tag sum, +10 with an outbound connection, +20 with any open stream', () => {
    expect(defaultScore(input({}))).to.equal(0)
    expect(defaultScore(input({ tags: { a: 5, b: -2 } }))).to.equal(3)
    expect(defaultScore(input({ outbound: 2 }))).to.equal(10)
    expect(defaultScore(input({ streams: 1 }))).to.equal(20)
    expect(defaultScore(input({ streams: 7, outbound: 1, tags: { a: 1 } }))).to.equal(31)
  })

  describe('planTrim', () => {
    it('closes whole peers, lowest score first, until the count is at or below the target', () => {
      const peers = [peer('a', 5, { connections: 2 }), peer('b', 1), peer('c', 3), peer('d', 9)]
      const plan = planTrim(columns(peers), 5, 2)
      expect(plan.close.map(i => peers[i].key)).to.deep.equal(['b', 'c', 'a'])
      expect(plan).to.include({ after: 1, shortfall: 0 })
    })

    it('nothing at or below the target', () => {
      expect(planTrim(columns([peer('a', 0), peer('b', 0)]), 2, 2).close).to.deep.equal([])
    })

    it('never closes protected or in-grace peers, and reports the shortfall', () => {
      const peers = [peer('p', 0, { protected: true }), peer('g', 0, { inGrace: true }), peer('x', 50)]
      const plan = planTrim(columns(peers), 3, 1)
      expect(plan.close.map(i => peers[i].key)).to.deep.equal(['x'])
      expect(plan).to.include({ after: 2, shortfall: 1, protectedPeers: 1, gracePeers: 1 })
    })

    it('ties: the peer seen most recently goes first, then the peer ID string ascending', () => {
      const peers = [peer('b', 1, { firstSeen: 10 }), peer('a', 1, { firstSeen: 10 }), peer('c', 1, { firstSeen: 20 })]
      const plan = planTrim(columns(peers), 3, 1)
      expect(plan.close.map(i => peers[i].key)).to.deep.equal(['c', 'a'])
      expect(sortClosing(columns(peers), [0, 1, 2]).map(i => peers[i].key)).to.deep.equal(['c', 'a', 'b'])
      expect(closingOrder(columns(peers), 0, 0)).to.equal(0)
    })

    const arbPeer = fc.record({ key: fc.string({ maxLength: 4 }), score: fc.integer({ min: -5, max: 5 }), connections: fc.integer({ min: 1, max: 3 }), firstSeen: fc.integer({ min: 0, max: 3 }), protected: fc.boolean(), inGrace: fc.boolean() })

    it('property: closes only trimmable peers, the lowest ranked ones, and stops as soon as it reaches the target', () => {
      fc.assert(fc.property(fc.array(arbPeer, { maxLength: 40 }), fc.nat(60), checkPlan))
    })

    it('property: lower-bound scores made exact at the front give the plan of the exact scores; each row is scored at most once and chosen exactly once', () => {
      fc.assert(fc.property(fc.array(fc.tuple(arbPeer, fc.constantFrom(0, 0, 20, 7)), { maxLength: 40 }), fc.nat(60), checkBoundedPlan))
    })

    it('when every trimmable peer must go, they are chosen in row order without ranking; sortClosing ranks them', () => {
      const peers = [peer('p', 0, { protected: true, connections: 5 }), peer('c', 9), peer('a', 1), peer('b', 5)]
      const chosen: number[] = []
      const plan = planTrim(columns(peers), 8, 4, { onChoose: row => { chosen.push(row) } })
      expect(plan).to.include({ everyTrimmable: true, after: 5, shortfall: 1 })
      expect(plan.close).to.deep.equal([1, 2, 3])
      expect(chosen).to.deep.equal([1, 2, 3])
      expect(sortClosing(columns(peers), plan.close).map(i => peers[i].key)).to.deep.equal(['a', 'b', 'c'])
      // with a target the other peers do not reach, the plan ranks and chooses in closing order
      chosen.length = 0
      const ranked = planTrim(columns(peers), 8, 6, { onChoose: row => { chosen.push(row) } })
      expect(ranked).to.include({ everyTrimmable: false, after: 6, shortfall: 0 })
      expect(ranked.close.map(i => peers[i].key)).to.deep.equal(['a', 'b'])
      expect(chosen).to.deep.equal(ranked.close)
    })

    it('bounded scores without exactScore are a programming error, thrown before anything is chosen', () => {
      const cols = columns([peer('a', 0), peer('b', 1)])
      cols.bounded = Uint8Array.of(0, 1) // row 0 is exact and could be chosen first
      const chosen: number[] = []
      expect(() => planTrim(cols, 2, 0, { onChoose: row => { chosen.push(row) } })).to.throw(TypeError)
      expect(chosen).to.deep.equal([])
    })
  })

  it('autoTrimDue: above highWater only, at once without a previous trim, else after the silence period', () => {
    expect(autoTrimDue(200, 200, 0, undefined, 10)).to.equal('never')
    expect(autoTrimDue(201, 200, 0, undefined, 10)).to.equal('now')
    expect(autoTrimDue(201, 200, 15, 10, 10)).to.equal(5)
    expect(autoTrimDue(201, 200, 20, 10, 10)).to.equal('now')
  })

  it('decayTicks counts the tag\'s own ticks in (from, to]', () => {
    expect(decayTicks(0, 1000, 500, 999)).to.equal(0)
    expect(decayTicks(0, 1000, 500, 1000)).to.equal(1)
    expect(decayTicks(0, 1000, 1000, 3500)).to.equal(2)
    expect(decayTicks(250, 1000, 0, 1250)).to.equal(2)
    expect(decayTicks(0, 1000, 2000, 1000)).to.equal(0)
  })

  it('isIdle and overLimit at their boundaries', () => {
    expect(isIdle(0, 39_999, 40_000)).to.equal(false)
    expect(isIdle(0, 40_000, 40_000)).to.equal(true)
    expect(overLimit(1, 2, false)).to.equal(false)
    expect(overLimit(2, 2, false)).to.equal(true)
    expect(overLimit(2, 2, true)).to.equal(false)
    expect(overLimit(1_000_000, Infinity, false)).to.equal(false)
  })
})
