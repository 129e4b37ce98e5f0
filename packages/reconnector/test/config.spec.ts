import { MAX_DURATION_MS } from '@holdfast/interface'
import { expect } from 'aegir/chai'
import { configOf } from '../src/config.ts'
import { defaults } from '../src/index.ts'
import type { ReconnectorInit } from '../src/index.ts'

/** the option an init is rejected for, or 'accepted' */
function rejected (init: ReconnectorInit): string {
  try {
    configOf(init)
    return 'accepted'
  } catch (err) {
    return `${(err as Error).name}:${(err as { option?: string }).option}`
  }
}

describe('configOf', () => {
  const bad: Array<[Record<string, unknown>, string]> = [
    [{ jitter: 1 }, 'jitter'],
    [{ jitter: -0.1 }, 'jitter'],
    [{ jitter: Number.NaN }, 'jitter'],
    [{ maxDelay: 500 }, 'maxDelay'],
    [{ initialDelay: 0 }, 'initialDelay'],
    [{ initialDelay: -1 }, 'initialDelay'],
    [{ stateHoldTime: 0 }, 'stateHoldTime'],
    [{ stateHoldTime: 5_000 }, 'stateHoldTime'],
    [{ toleranceWindow: -1 }, 'toleranceWindow'],
    [{ toleranceWindow: Number.POSITIVE_INFINITY }, 'toleranceWindow'],
    [{ crossingDelay: -1 }, 'crossingDelay'],
    [{ crossingDelay: Number.NaN }, 'crossingDelay'],
    [{ maxAttempts: 0 }, 'maxAttempts'],
    [{ maxAttempts: 1.5 }, 'maxAttempts'],
    [{ multiplier: 0.5 }, 'multiplier'],
    // a timer clamps 2^31 ms or more to 1 ms: the delay would pass at once
    [{ maxDelay: 2 ** 31 }, 'maxDelay'],
    [{ stateHoldTime: 2 ** 31 }, 'stateHoldTime'],
    [{ random: 0.5 }, 'random'],
    [{ dial: 'tcp' }, 'dial'],
    [{ clock: { now: () => 0 } }, 'clock']
  ]
  for (const [init, option] of bad) {
    it(`rejects ${JSON.stringify(init)} with InvalidConfigError naming ${option}`, () => {
      expect(rejected(init as ReconnectorInit)).to.equal(`InvalidConfigError:${option}`)
    })
  }

  it('accepts the defaults, no window, no jitter, a flat backoff and the longest timer', () => {
    expect(rejected({})).to.equal('accepted')
    expect(rejected({ toleranceWindow: 0, jitter: 0, multiplier: 1, maxDelay: 1_000 })).to.equal('accepted')
    expect(rejected({ maxDelay: MAX_DURATION_MS, stateHoldTime: MAX_DURATION_MS })).to.equal('accepted')
  })

  it('fills every default once, and only the options that have one', () => {
    const { clock, random, ...numbers } = configOf({ maxAttempts: 3 })
    expect(numbers).to.deep.equal({ ...defaults, maxAttempts: 3 })
    expect(random).to.equal(Math.random)
    expect(clock.now()).to.be.a('number')
  })
})
