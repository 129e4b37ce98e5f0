import { readFile } from 'node:fs/promises'
import { MAX_DURATION_MS, systemClock } from '@holdfast/interface'
import { expect } from 'aegir/chai'
import { configOf, resolvePreset } from '../src/config.ts'
import { PRESETS } from '../src/constants.ts'
import { defaults, selectPath } from '../src/index.ts'
import type { PathSelectorInit } from '../src/index.ts'

describe('config', () => {
  it('fills every option with a default from the defaults table, once', () => {
    const config = configOf({})
    const { preset, ...plain } = defaults
    expect(config).to.deep.include(plain)
    expect(config.preset).to.equal(PRESETS[preset])
    expect(config.selectPath).to.equal(selectPath)
    expect(config.clock).to.equal(systemClock)
    expect(config.natOf({} as any)).to.equal('unknown')
  })

  it('lists in the defaults table exactly the Init options whose @default is a plain value, with the same values', async () => {
    const source = await readFile(new URL('../src/index.ts', import.meta.url), 'utf8')
    const init = source.slice(source.indexOf('export interface PathSelectorInit'), source.indexOf('export interface PathSelectorComponents'))
    const documented: Record<string, string> = {}
    for (const [, value, option] of init.matchAll(/@default ([^\n]+)\n\s*\*\/\n\s*(\w+)\??[(:]/g)) {
      documented[option] = value.trim()
    }
    const plain = Object.fromEntries(Object.entries(documented).filter(([, value]) => /^('[^']*'|-?\d+(\.\d+)?|true|false)$/.test(value)))
    expect(Object.keys(plain).sort()).to.deep.equal(Object.keys(defaults).sort())
    for (const [option, value] of Object.entries(defaults)) {
      expect(plain[option], option).to.equal(typeof value === 'string' ? `'${value}'` : String(value))
    }
    // the other options say what they default to in words
    expect(Object.keys(documented).filter(o => !(o in plain)).sort()).to.deep.equal(['clock', 'natOf', 'selectPath'])
  })

  it('rejects each bad option with InvalidConfigError naming it', () => {
    const bad: Array<[PathSelectorInit, string]> = [
      [{ preset: 'laptop' as 'desktop' }, 'preset'],
      [{ preset: { idleTimeoutMs: 10_000, heartbeatIntervalMs: 1_000, keepAlivePeriodMs: 10_000 } }, 'preset.keepAlivePeriodMs'],
      [{ preset: { idleTimeoutMs: 10_000, heartbeatIntervalMs: 10_000, keepAlivePeriodMs: 1_000 } }, 'preset.heartbeatIntervalMs'],
      [{ preset: { idleTimeoutMs: MAX_DURATION_MS + 1, heartbeatIntervalMs: 1_000, keepAlivePeriodMs: 1_000 } }, 'preset.idleTimeoutMs'],
      [{ upgrade: 'yes' as unknown as boolean }, 'upgrade'],
      [{ keepRelayBackup: 1 as unknown as boolean }, 'keepRelayBackup'],
      [{ rttAlpha: 0 }, 'rttAlpha'],
      [{ rttAlpha: 1.5 }, 'rttAlpha'],
      [{ rttAlpha: Number.NaN }, 'rttAlpha'],
      [{ failuresToDemote: 0 }, 'failuresToDemote'],
      [{ failuresToDemote: 1.5 }, 'failuresToDemote'],
      [{ localNat: 'cone' as 'none' }, 'localNat'],
      [{ natOf: 'unknown' as any }, 'natOf'],
      [{ selectPath: 'lowest-rtt' as any }, 'selectPath'],
      [{ selectPath: 42 as any }, 'selectPath'],
      [{ upgradeTimeoutMs: 0 }, 'upgradeTimeoutMs'],
      [{ upgradeTimeoutMs: Number.POSITIVE_INFINITY }, 'upgradeTimeoutMs'],
      [{ upgradeTimeoutMs: 2 ** 31 }, 'upgradeTimeoutMs'],
      [{ upgradeMaxAttempts: -1 }, 'upgradeMaxAttempts'],
      [{ retryInitialDelayMs: -1 }, 'retryInitialDelayMs'],
      [{ retryMaxDelayMs: 2 ** 31 }, 'retryMaxDelayMs'],
      [{ retryInitialDelayMs: 2_000, retryMaxDelayMs: 1_000 }, 'retryMaxDelayMs'],
      [{ clock: { now: () => 0 } as any }, 'clock']
    ]
    for (const [init, option] of bad) {
      expect(() => configOf(init), option).to.throw().that.deep.includes({ name: 'InvalidConfigError', option })
    }
    // null or undefined is no option: the default
    expect(configOf({ selectPath: null as any }).selectPath).to.equal(selectPath)
  })

  it('accepts the longest duration a timer can wait, and a custom path choice', () => {
    const custom = (): undefined => undefined
    const config = configOf({ upgradeTimeoutMs: MAX_DURATION_MS, retryMaxDelayMs: MAX_DURATION_MS, selectPath: custom, upgradeMaxAttempts: 0 })
    expect(config).to.deep.include({ upgradeTimeoutMs: MAX_DURATION_MS, retryMaxDelayMs: MAX_DURATION_MS, upgradeMaxAttempts: 0 })
    expect(config.selectPath).to.equal(custom)
  })

  describe('presets', () => {
    it('has the four named presets', () => {
      expect(resolvePreset('mobile')).to.deep.equal({ idleTimeoutMs: 120_000, heartbeatIntervalMs: 30_000, keepAlivePeriodMs: 60_000 })
      expect(resolvePreset('desktop')).to.deep.equal({ idleTimeoutMs: 300_000, heartbeatIntervalMs: 15_000, keepAlivePeriodMs: 150_000 })
      expect(resolvePreset('server')).to.deep.equal({ idleTimeoutMs: 600_000, heartbeatIntervalMs: 10_000, keepAlivePeriodMs: 300_000 })
      expect(resolvePreset('test')).to.deep.equal({ idleTimeoutMs: 30_000, heartbeatIntervalMs: 5_000, keepAlivePeriodMs: 15_000 })
    })

    it('every built-in preset passes its own validation', () => {
      for (const preset of Object.values(PRESETS)) {
        expect(resolvePreset({ ...preset })).to.deep.equal(preset)
      }
    })

    it('rejects a keep-alive period at or above the idle timeout with InvalidConfigError', () => {
      expect(() => resolvePreset({ idleTimeoutMs: 1000, heartbeatIntervalMs: 100, keepAlivePeriodMs: 1000 })).to.throw().with.property('name', 'InvalidConfigError')
      expect(() => resolvePreset({ idleTimeoutMs: 1000, heartbeatIntervalMs: 100, keepAlivePeriodMs: 5000 })).to.throw().with.property('name', 'InvalidConfigError')
      expect(resolvePreset({ idleTimeoutMs: 1000, heartbeatIntervalMs: 100, keepAlivePeriodMs: 999 }).keepAlivePeriodMs).to.equal(999)
    })

    it('rejects a heartbeat at or above the idle timeout, non-positive or non-finite values, unknown names', () => {
      expect(() => resolvePreset({ idleTimeoutMs: 1000, heartbeatIntervalMs: 1000, keepAlivePeriodMs: 500 })).to.throw().with.property('name', 'InvalidConfigError')
      for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
        expect(() => resolvePreset({ idleTimeoutMs: 1000, heartbeatIntervalMs: bad, keepAlivePeriodMs: 500 })).to.throw().with.property('name', 'InvalidConfigError')
      }
      expect(() => resolvePreset('laptop' as 'desktop')).to.throw().with.property('name', 'InvalidConfigError')
      expect(() => resolvePreset(null as unknown as 'desktop')).to.throw().with.property('name', 'InvalidConfigError')
    })
  })
})
