import { expect } from 'aegir/chai'
import fc from 'fast-check'
import { RTT_SWITCHING_MIN_MS } from '../src/constants.ts'
import { NAT_TYPES, natDecision, nextMode, retryDelay, selectPath, updateRtt } from '../src/policy.ts'
import type { NatDecision, NatType, PathCandidate } from '../src/policy.ts'
import type { PathStatus } from '@holdfast/interface'

let ids = 0
const path = (kind: 'direct' | 'relayed', rttMs?: number, extra: Partial<PathCandidate> = {}): PathCandidate => ({ id: `p${++ids}`, kind, status: 'active', rttMs, ...extra })
const direct = (rttMs?: number, extra: Partial<PathCandidate> = {}): PathCandidate => path('direct', rttMs, extra)
const relayed = (rttMs?: number, extra: Partial<PathCandidate> = {}): PathCandidate => path('relayed', rttMs, extra)
const punched = (rttMs?: number): PathCandidate => direct(rttMs, { holePunched: true })
const failing = (c: PathCandidate): PathCandidate => ({ ...c, status: 'failing' })
const closed = (c: PathCandidate): PathCandidate => ({ ...c, status: 'closed' })
const hasStatus = (candidates: readonly PathCandidate[], status: PathStatus): boolean => candidates.some(c => c.status === status)

describe('policy', () => {
  describe('selectPath', () => {
    it('picks nothing from nothing, and never a closed path', () => {
      expect(selectPath([])).to.equal(undefined)
      expect(selectPath([closed(direct(1)), closed(relayed(1))])).to.equal(undefined)
    })

    it('ranks direct, hole-punched, realm relay, any relay', () => {
      const d = direct(80)
      const p = punched(10)
      const r = relayed(5, { realmRelay: true })
      const a = relayed(1)
      expect(selectPath([a, r, p, d])).to.equal(d)
      expect(selectPath([a, r, p])).to.equal(p)
      expect(selectPath([a, r])).to.equal(r)
      expect(selectPath([a])).to.equal(a)
    })

    it('picks the lowest RTT within a rank, an unknown RTT last', () => {
      const slow = direct(30)
      const fast = direct(10)
      const unknown = direct()
      expect(selectPath([unknown, slow, fast])).to.equal(fast)
      expect(selectPath([unknown, relayed(50), relayed(20)])).to.equal(unknown)
      const r1 = relayed(40)
      const r2 = relayed(20)
      expect(selectPath([r1, r2])).to.equal(r2)
    })

    it('ranks a failing path below every healthy one', () => {
      const d = failing(direct(1))
      const a = relayed(500)
      expect(selectPath([d, a])).to.equal(a)
      expect(selectPath([failing(direct(1)), failing(relayed(1)), closed(direct(0))])?.kind).to.equal('direct')
      // the current path stops holding the traffic once it fails
      const current = failing(direct(10))
      const other = direct(12)
      expect(selectPath([current, other], current)).to.equal(other)
    })

    it('switches to a challenger of the same rank once it is RTT_SWITCHING_MIN_MS better (best + 5 <= current), as iroh does', () => {
      expect(RTT_SWITCHING_MIN_MS).to.equal(5)
      const table: Array<{ better: number, switches: boolean }> = [
        { better: 0, switches: false },
        { better: 2, switches: false },
        { better: 4, switches: false },
        { better: 4.9, switches: false },
        { better: 5, switches: true },
        { better: 6, switches: true },
        { better: 50, switches: true }
      ]
      for (const { better, switches } of table) {
        const current = direct(20)
        const challenger = direct(20 - better)
        expect(selectPath([current, challenger], current), `${better} ms better`).to.equal(switches ? challenger : current)
        // the order of the candidates does not matter
        expect(selectPath([challenger, current], current), `${better} ms better, reversed`).to.equal(switches ? challenger : current)
        // the same between two relays
        const relayedCurrent = relayed(120)
        const relayedChallenger = relayed(120 - better)
        expect(selectPath([relayedCurrent, relayedChallenger], relayedCurrent), `${better} ms better, relayed`).to.equal(switches ? relayedChallenger : relayedCurrent)
      }
    })

    it('with no current path, or none left among the candidates, picks the best at once', () => {
      const slow = direct(20)
      const fast = direct(16)
      expect(selectPath([slow, fast])).to.equal(fast)
      expect(selectPath([slow, fast], direct(1))).to.equal(fast)
      // the empty case, with and without a current path
      expect(selectPath([], slow)).to.equal(undefined)
    })

    it('applies no switching margin across ranks: a plain direct path takes over from a hole-punched one', () => {
      const current = punched(10)
      const plain = direct(14)
      expect(selectPath([current, plain], current)).to.equal(plain)
    })

    it('a current path that is no longer a candidate does not count', () => {
      const gone = direct(1)
      const other = direct(30)
      expect(selectPath([other], gone)).to.equal(other)
      expect(selectPath([closed(gone), other], gone)).to.equal(other)
    })

    it('a current path with an unknown RTT gives way to a measured one of its rank', () => {
      const current = direct()
      const measured = direct(100)
      expect(selectPath([current, measured], current)).to.equal(measured)
    })

    it('breaks ties deterministically: the current path, else the earliest candidate', () => {
      const a = direct(10)
      const b = direct(10)
      expect(selectPath([a, b])).to.equal(a)
      expect(selectPath([b, a])).to.equal(b)
      expect(selectPath([a, b], b)).to.equal(b)
      const u1 = relayed()
      const u2 = relayed()
      expect(selectPath([u1, u2])).to.equal(u1)
      expect(selectPath([u1, u2], u2)).to.equal(u2)
    })

    const arbCandidate = fc.record({
      id: fc.string({ minLength: 1, maxLength: 4 }),
      kind: fc.constantFrom<'direct' | 'relayed'>('direct', 'relayed'),
      status: fc.constantFrom<PathStatus>('active', 'failing', 'closed'),
      rttMs: fc.option(fc.double({ min: 0, max: 1000, noNaN: true }), { nil: undefined }),
      holePunched: fc.boolean(),
      realmRelay: fc.boolean()
    })

    it('always picks a healthy path when one exists, and an open one when any is (property)', () => {
      fc.assert(fc.property(fc.array(arbCandidate, { maxLength: 20 }), fc.option(fc.nat(19), { nil: undefined }), (candidates, currentIndex) => {
        const current = currentIndex === undefined ? undefined : candidates[currentIndex]
        const pick = selectPath(candidates, current)
        if (hasStatus(candidates, 'active')) {
          expect(pick?.status).to.equal('active')
        } else if (hasStatus(candidates, 'failing')) {
          expect(pick?.status).to.equal('failing')
        } else {
          expect(pick).to.equal(undefined)
        }
      }))
    })

    it('never picks a worse rank, and a path of the best rank less than the margin above the lowest RTT (property)', () => {
      fc.assert(fc.property(fc.array(arbCandidate, { minLength: 1, maxLength: 20 }), fc.nat(19), (candidates, i) => {
        const current = candidates[i % candidates.length]
        const pick = selectPath(candidates, current)
        const plain = selectPath(candidates)
        if (pick === undefined || plain === undefined) {
          expect(pick).to.equal(plain)
          return
        }
        if (pick !== plain) {
          // only the switching margin makes them differ: the incumbent, healthy, less than the margin worse
          expect(pick.id).to.equal(current.id)
          expect(pick.status).to.equal('active')
          if (pick.rttMs !== plain.rttMs) {
            expect((pick.rttMs ?? Infinity) - (plain.rttMs ?? Infinity)).to.be.below(RTT_SWITCHING_MIN_MS)
          }
        }
      }))
    })
  })

  describe('natDecision', () => {
    // initiator (row) by target (column): the 3x3 matrix of NATs of known type, extended with none and unknown
    const table: Record<NatType, Record<NatType, NatDecision>> = {
      none: { none: 'direct', 'full-cone': 'direct', restricted: 'direct', symmetric: 'direct', unknown: 'direct' },
      'full-cone': { none: 'direct', 'full-cone': 'direct', restricted: 'punch', symmetric: 'punch-try', unknown: 'punch-try' },
      restricted: { none: 'direct', 'full-cone': 'punch', restricted: 'punch-try', symmetric: 'relay', unknown: 'punch-try' },
      symmetric: { none: 'direct', 'full-cone': 'punch-try', restricted: 'relay', symmetric: 'relay', unknown: 'punch-try' },
      unknown: { none: 'direct', 'full-cone': 'punch-try', restricted: 'punch-try', symmetric: 'punch-try', unknown: 'punch-try' }
    }

    for (const local of NAT_TYPES) {
      for (const remote of NAT_TYPES) {
        it(`${local} -> ${remote}: ${table[local][remote]}`, () => {
          expect(natDecision(local, remote)).to.equal(table[local][remote])
        })
      }
    }

    it('rejects a NAT type it does not know with InvalidArgumentError', () => {
      expect(() => natDecision('cone' as NatType, 'none')).to.throw().with.property('name', 'InvalidArgumentError')
      expect(() => natDecision('none', undefined as unknown as NatType)).to.throw().with.property('name', 'InvalidArgumentError')
    })
  })

  describe('updateRtt', () => {
    it('takes the first sample as is, then moves by alpha toward each sample', () => {
      expect(updateRtt(undefined, 40, 0.2)).to.equal(40)
      expect(updateRtt(40, 90, 0.2)).to.equal(50)
      expect(updateRtt(50, 50, 0.2)).to.equal(50)
      expect(updateRtt(50, 0, 1)).to.equal(0)
    })
  })

  describe('nextMode', () => {
    it('is direct-primary on a direct best path, relay-only or fallback on a relayed one', () => {
      expect(nextMode(undefined, undefined)).to.equal(undefined)
      expect(nextMode('direct-primary', undefined)).to.equal(undefined)
      expect(nextMode(undefined, 'relayed')).to.equal('relay-only')
      expect(nextMode('relay-only', 'relayed')).to.equal('relay-only')
      expect(nextMode('relay-only', 'direct')).to.equal('direct-primary')
      expect(nextMode(undefined, 'direct')).to.equal('direct-primary')
      expect(nextMode('direct-primary', 'relayed')).to.equal('fallback')
      expect(nextMode('fallback', 'relayed')).to.equal('fallback')
      expect(nextMode('fallback', 'direct')).to.equal('direct-primary')
    })
  })

  describe('retryDelay', () => {
    it('doubles from the initial delay up to the cap', () => {
      expect([0, 1, 2, 3, 10].map(a => retryDelay(a, 1000, 60_000))).to.deep.equal([1000, 2000, 4000, 8000, 60_000])
    })
  })
})
