import { connect, createNode, onceEvent } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { configOf, withLimits } from '../src/config.ts'
import { defaults, defaultScore, watermarkConnectionManager } from '../src/index.ts'
import { HubFixture, nextEvent } from './helpers.ts'
import type { WatermarkConnectionManagerInit } from '../src/index.ts'
import type { Settings } from '../src/policy.ts'

const TOO_LONG = 2 ** 34

describe('configuration', () => {
  describe('configOf', () => {
    it('fills every option from the defaults once', () => {
      const { settings, score, hysteresis } = configOf({})
      expect(settings).to.deep.equal({ ...defaults })
      expect(score).to.equal(defaultScore)
      expect(hysteresis).to.equal(undefined)
    })

    it('accepts the boundaries', () => {
      expect(configOf({ lowWater: 1, highWater: 2, hysteresis: 1 }).settings).to.include({ lowWater: 1, highWater: 2, hysteresis: 1 })
      expect(configOf({ gracePeriod: 0, silencePeriod: 0, maxInbound: 0, maxOutbound: 0, idleTimeout: Infinity }).settings).to.include({ maxInbound: 0, idleTimeout: Infinity })
      expect(configOf({ gracePeriod: 2 ** 31 - 1, idleTimeout: 2 ** 31 - 1 }).settings).to.include({ idleTimeout: 2 ** 31 - 1 })
    })

    it('the default hysteresis is lowered to the gap between the watermarks', () => {
      expect(configOf({ lowWater: 5, highWater: 8 }).settings.hysteresis).to.equal(3)
    })

    const bad: Array<[string, WatermarkConnectionManagerInit, string]> = [
      ['Infinity highWater', { highWater: Infinity }, 'highWater'],
      ['Infinity gracePeriod', { gracePeriod: Infinity }, 'gracePeriod'],
      ['fractional maxInbound', { maxInbound: 2.5 }, 'maxInbound'],
      ['negative idleTimeout', { idleTimeout: -1 }, 'idleTimeout'],
      ['idleTimeout of 2^34 ms, which a timer would fire at once', { idleTimeout: TOO_LONG }, 'idleTimeout'],
      ['silencePeriod of 2^31 ms', { silencePeriod: 2 ** 31 }, 'silencePeriod'],
      ['hysteresis = highWater - lowWater + 1', { hysteresis: 101 }, 'hysteresis'],
      ['fractional hysteresis', { hysteresis: 2.5 }, 'hysteresis']
    ]
    for (const [name, init, option] of bad) {
      it(`rejects ${name}: InvalidConfigError naming ${option}`, () => {
        expect(() => configOf(init)).to.throw().that.includes({ name: 'InvalidConfigError', option })
      })
    }
  })

  describe('withLimits', () => {
    const current = (): Settings => configOf({ lowWater: 2, highWater: 4 }).settings

    it('checks the result as a whole and names the first limit wrong', () => {
      const config = configOf({ lowWater: 2, highWater: 4 })
      expect(withLimits(config, current(), { lowWater: 3, highWater: 6 })).to.include({ lowWater: 3, highWater: 6, hysteresis: 3 })
      expect(() => withLimits(config, current(), { lowWater: 4 })).to.throw().that.includes({ name: 'InvalidArgumentError', argument: 'highWater' })
      expect(() => withLimits(config, current(), { idleTimeout: TOO_LONG })).to.throw().that.includes({ name: 'InvalidArgumentError', argument: 'idleTimeout' })
      expect(() => withLimits(config, current(), null as any)).to.throw().that.includes({ name: 'InvalidArgumentError', argument: 'limits' })
      expect(() => withLimits(config, current(), { trimMode: 'incremental' } as any)).to.throw().that.includes({ name: 'InvalidArgumentError', argument: 'trimMode' })
    })

    it('keeps the hysteresis the app chose', () => {
      const config = configOf({ lowWater: 2, highWater: 10, hysteresis: 2 })
      expect(withLimits(config, config.settings, { highWater: 20 }).hysteresis).to.equal(2)
    })
  })

  describe('on a real node', () => {
    const f = new HubFixture()

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
      ['idleTimeout of 2^34 ms', { idleTimeout: TOO_LONG }, 'idleTimeout'],
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
      const { connections } = await f.hubWith({ lowWater: 2, highWater: 4, maxInbound: 3 })
      expect(() => { connections.setLimits({ lowWater: 3, highWater: 3 }) }).to.throw().with.property('name', 'InvalidArgumentError')
      expect(() => { connections.setLimits({ maxInbound: -1 }) }).to.throw().with.property('name', 'InvalidArgumentError')
      const before = connections.explainTrim()
      expect(before.target).to.equal(2)
      connections.setLimits({ lowWater: 3, highWater: 6 })
      expect(connections.explainTrim().target).to.equal(3)
    })

    it('setLimits({ idleTimeout: 2^34 }) throws InvalidArgumentError naming idleTimeout; the idle sweep keeps its pace', async () => {
      const { connections } = await f.hubWith({ idleTimeout: 40_000, gracePeriod: 0 })
      const [peer] = await f.nodes(1)
      const identified = onceEvent(f.hub, 'peer:identify', r => r.peerId.equals(peer.peerId))
      await connect(peer, f.hub)
      await identified
      expect(connections.internalSizes().timers).to.equal(1) // the idle sweep
      expect(() => { connections.setLimits({ lowWater: 50, idleTimeout: TOO_LONG }) }).to.throw().that.includes({ name: 'InvalidArgumentError', argument: 'idleTimeout' })
      expect(connections.explainTrim().target).to.equal(defaults.lowWater)
      // still sweeping every 10 s: a connection without streams goes 40 s (at most two sweeps more) after its open
      const closed = nextEvent(f.hub, 'connection:closed-by-manager')
      await f.clock.tickAsync(60_000)
      expect(await closed).to.deep.equal({ peer: peer.peerId, reason: 'idle' })
      expect(connections.stats().closed.idle).to.equal(1)
    })
  })
})
