import { KEEP_ALIVE } from '@libp2p/interface'
import { expect } from 'aegir/chai'
import fc from 'fast-check'
import { KEEP_ALIVE_PREFIX, PARKED_TAG_PREFIX } from '../src/constants.ts'
import { defaults } from '../src/index.ts'
import { backoffDelay, crossingYield, delayBand, dropParkedTags, hasKeepAliveTag, nextDeadline, parkKeepAliveTags, releasesPeer, restoreKeepAliveTags, transition } from '../src/policy.ts'
import type { ReconnectConfig } from '../src/config.ts'
import type { HeldTiming, Input, PeerState } from '../src/policy.ts'
import type { CleanupReason } from '@holdfast/interface'

const config = (over: Partial<ReconnectConfig> = {}): ReconnectConfig => ({ ...defaults, ...over })
const timing = (over: Partial<HeldTiming>): HeldTiming => ({ state: 'held', windowEndsAt: 5_000, nextAttemptAt: Number.POSITIVE_INFINITY, holdDeadline: 30_000, ...over })
const failed = (attempts: number): Input => ({ type: 'attempt-failed', attempts, maxAttempts: 5 })

describe('policy', () => {
  describe('backoffDelay / delayBand', () => {
    it('gives the default bands: 0.8-1.2, 1.6-2.4, 3.2-4.8, 6.4-9.6, 12.8-19.2 s', () => {
      expect([0, 1, 2, 3, 4].map(n => delayBand(n, defaults))).to.deep.equal([
        [800, 1200], [1600, 2400], [3200, 4800], [6400, 9600], [12800, 19200]
      ])
    })

    it('caps the base at maxDelay before the jitter', () => {
      expect(delayBand(10, defaults)).to.deep.equal([48_000, 72_000])
      expect(delayBand(3, config({ maxDelay: 5_000 }))).to.deep.equal([4_000, 6_000])
    })

    it('maps random 0, 0.5 and just under 1 to the low end, the middle and the high end', () => {
      expect(backoffDelay(0, defaults, 0)).to.equal(800)
      expect(backoffDelay(0, defaults, 0.5)).to.equal(1000)
      expect(backoffDelay(0, defaults, 0.999999)).to.equal(1200)
      expect(backoffDelay(2, config({ jitter: 0 }), 0.3)).to.equal(4000)
    })

    it('stays inside the band for any attempt, config and random value, even a random out of range', () => {
      fc.assert(fc.property(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.double({ min: 0, max: 0.99, noNaN: true }),
        fc.double({ noNaN: false }),
        (attempt, initialDelay, extra, multiplier, jitter, random) => {
          const c = { initialDelay, maxDelay: initialDelay + extra, multiplier, jitter }
          const [min, max] = delayBand(attempt, c)
          const delay = backoffDelay(attempt, c, random)
          return delay >= min - 0.5 && delay <= max + 0.5 && Number.isInteger(delay)
        }))
    })
  })

  describe('nextDeadline', () => {
    it('held: the window, unless the hold runs out first', () => {
      expect(nextDeadline(timing({}))).to.deep.equal({ at: 5_000, kind: 'window' })
      expect(nextDeadline(timing({ holdDeadline: 4_000 }))).to.deep.equal({ at: 4_000, kind: 'hold' })
    })

    it('reconnecting: the next attempt, the hold on a tie, the hold while a dial is in flight', () => {
      expect(nextDeadline(timing({ state: 'reconnecting', nextAttemptAt: 29_999 }))).to.deep.equal({ at: 29_999, kind: 'attempt' })
      expect(nextDeadline(timing({ state: 'reconnecting', nextAttemptAt: 30_000 }))).to.deep.equal({ at: 30_000, kind: 'hold' })
      expect(nextDeadline(timing({ state: 'reconnecting', nextAttemptAt: 30_001 }))).to.deep.equal({ at: 30_000, kind: 'hold' })
      expect(nextDeadline(timing({ state: 'reconnecting' }))).to.deep.equal({ at: 30_000, kind: 'hold' })
    })

    it('connected and removed peers have no deadline', () => {
      expect(nextDeadline(timing({ state: 'connected' }))).to.equal(undefined)
      expect(nextDeadline(timing({ state: 'removed' }))).to.equal(undefined)
    })
  })

  describe('transition', () => {
    const cases: Array<[PeerState | undefined, Input, ReturnType<typeof transition>]> = [
      [undefined, { type: 'connected' }, { state: 'connected', presence: 'online' }],
      ['removed', { type: 'connected' }, { state: 'connected', presence: 'online' }],
      ['connected', { type: 'connected' }, { state: 'connected' }],
      ['connected', { type: 'disconnected' }, { state: 'held' }],
      ['held', { type: 'disconnected' }, { state: 'held' }],
      ['held', { type: 'connected' }, { state: 'connected', recovered: true }],
      ['reconnecting', { type: 'connected' }, { state: 'connected', recovered: true }],
      ['held', { type: 'window-passed' }, { state: 'reconnecting' }],
      ['held', { type: 'retry-now' }, { state: 'reconnecting' }],
      ['connected', { type: 'retry-now' }, { state: 'connected' }],
      ['reconnecting', failed(4), { state: 'reconnecting' }],
      ['reconnecting', failed(5), { state: 'removed', removed: 'attempts-exhausted', presence: 'offline' }],
      ['held', { type: 'hold-expired' }, { state: 'removed', removed: 'hold-expired', presence: 'offline' }],
      ['reconnecting', { type: 'hold-expired' }, { state: 'removed', removed: 'hold-expired', presence: 'offline' }],
      ['connected', { type: 'hold-expired' }, { state: 'connected' }],
      ['reconnecting', { type: 'unwatched' }, { state: 'removed', removed: 'unwatched', presence: 'offline' }],
      ['connected', { type: 'unwatched' }, { state: 'removed' }],
      ['held', { type: 'released' }, { state: 'removed', removed: 'cleaned-up', presence: 'offline' }],
      ['reconnecting', { type: 'released' }, { state: 'removed', removed: 'cleaned-up', presence: 'offline' }],
      ['connected', { type: 'released' }, { state: 'connected', releaseOnDisconnect: true }],
      ['connected', { type: 'disconnected', released: true }, { state: 'removed', removed: 'cleaned-up', presence: 'offline' }],
      ['held', { type: 'disconnected', released: true }, { state: 'held' }],
      [undefined, { type: 'released' }, { state: 'removed' }]
    ]
    for (const [state, input, expected] of cases) {
      it(`${String(state)} + ${input.type}${input.type === 'attempt-failed' ? ` (${input.attempts}/5)` : ''} -> ${expected.state}`, () => {
        expect(transition(state, input)).to.deep.equal(expected)
      })
    }

    it('never tells the app offline except on a removal, and never online on a recovery', () => {
      const inputs: Input[] = [{ type: 'connected' }, { type: 'disconnected' }, { type: 'disconnected', released: true }, { type: 'window-passed' }, { type: 'retry-now' }, failed(1), failed(5), { type: 'hold-expired' }, { type: 'unwatched' }, { type: 'released' }]
      fc.assert(fc.property(fc.array(fc.constantFrom(...inputs), { maxLength: 40 }), (script) => {
        let state: PeerState | undefined
        for (const input of script) {
          const next = transition(state, input)
          if (next.presence === 'offline' && next.removed === undefined) {
            return false
          }
          if (next.recovered === true && next.presence !== undefined) {
            return false
          }
          state = next.state
        }
        return true
      }))
    })
  })

  describe('releasesPeer', () => {
    it('lets go of the peer when the app does (logout, closing, a manual cleanup), and bridges every other cleanup', () => {
      const cases: Array<[CleanupReason, boolean]> = [
        ['user-logout', true],
        ['app-terminating', true],
        ['manual', true],
        ['peer-disconnected', false],
        ['network-offline', false],
        ['restart-failed', false],
        ['reconnect-gave-up', false],
        ['shutdown', false],
        ['manual-reset', false],
        ['stale-connection-suspected', false],
        ['network-path-changed', false],
        ['long-background', false],
        ['probe-failed', false],
        ['manual-reconnect', false]
      ]
      expect(cases.map(([reason]) => [reason, releasesPeer(reason)])).to.deep.equal(cases)
    })
  })

  describe('crossingYield', () => {
    it('of the two ends of a pair, exactly one yields, and both agree which', () => {
      fc.assert(fc.property(fc.string(), fc.string(), fc.nat(10_000), (a, b, delay) => {
        fc.pre(a !== b)
        const [ab, ba] = [crossingYield(a, b, delay), crossingYield(b, a, delay)]
        return delay === 0 ? ab === 0 && ba === 0 : ab + ba === delay && (ab === 0 || ba === 0)
      }))
    })
  })

  describe('keep-alive tags', () => {
    it('uses libp2p\'s own KEEP_ALIVE prefix, and a parked name libp2p does not recognise', () => {
      expect(KEEP_ALIVE_PREFIX).to.equal(KEEP_ALIVE)
      expect((PARKED_TAG_PREFIX + KEEP_ALIVE).startsWith(KEEP_ALIVE)).to.equal(false)
    })

    it('parks every keep-alive* tag with its value, leaves the others, and restores or drops them', () => {
      const tags = new Map([['keep-alive', { value: 1 }], ['keep-alive-kad-dht', { value: 50 }], ['realm-member', { value: 100 }]])
      const parked = parkKeepAliveTags(tags)
      expect(parked).to.deep.equal({
        'keep-alive': undefined,
        'holdfast-parked:keep-alive': { value: 1 },
        'keep-alive-kad-dht': undefined,
        'holdfast-parked:keep-alive-kad-dht': { value: 50 }
      })
      const after = new Map(Object.entries({ ...Object.fromEntries(tags), ...parked }).filter(([, v]) => v !== undefined)) as Map<string, { value: number }>
      expect(hasKeepAliveTag(after)).to.equal(false)
      expect(restoreKeepAliveTags(after)).to.deep.equal({
        'holdfast-parked:keep-alive': undefined,
        'keep-alive': { value: 1 },
        'holdfast-parked:keep-alive-kad-dht': undefined,
        'keep-alive-kad-dht': { value: 50 }
      })
      expect(dropParkedTags(after)).to.deep.equal({ 'holdfast-parked:keep-alive': undefined, 'holdfast-parked:keep-alive-kad-dht': undefined })
      expect(parkKeepAliveTags(new Map([['realm-member', { value: 100 }]]))).to.equal(undefined)
    })
  })
})
