import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { environment } from '../src/harness.ts'
import { result } from '../src/result.ts'
import type { ResultInput, Target } from '../src/result.ts'

const ctx = { name: 'demo', env: environment(true) }

/** a minimal input: value 1 ms, one target on it */
function input (overrides: Partial<ResultInput> = {}): ResultInput {
  return { unit: 'ms', value: 1, targets: [{ metric: 'value', below: 2 }], samples: 10, ...overrides }
}

const passes = (value: number, target: Omit<Target, 'metric'>): boolean => result(ctx, input({ value, targets: [{ metric: 'value', ...target }] })).pass

describe('result', () => {
  it('writes the fields every result file has, metrics and extras at the top level', () => {
    const r = result(ctx, input({
      statistic: 'p99 of something',
      metrics: { p50: 0.5, p99: 1 },
      baseline: { name: 'plain', value: 4, measured: true },
      extra: { cases: [{ name: 'a' }], notes: ['why'] }
    }))
    assert.deepEqual(r, {
      name: 'demo',
      unit: 'ms',
      value: 1,
      statistic: 'p99 of something',
      baseline: { name: 'plain', value: 4, measured: true },
      ratio: 0.25,
      target: 'value < 2 ms',
      targets: [{ metric: 'value', op: '<', threshold: 2, unit: 'ms', actual: 1, pass: true }],
      pass: true,
      samples: 10,
      env: ctx.env,
      p50: 0.5,
      p99: 1,
      cases: [{ name: 'a' }],
      notes: ['why']
    })
  })

  const bounds: Array<[string, Omit<Target, 'metric'>, Array<[number, boolean]>]> = [
    ['below', { below: 2 }, [[1.999, true], [2, false], [2.001, false]]],
    ['atMost', { atMost: 3 }, [[2.999, true], [3, true], [3.001, false]]],
    ['atLeast', { atLeast: 5 }, [[4.999, false], [5, true], [5.001, true]]],
    ['above', { above: 0 }, [[-1, false], [0, false], [0.001, true]]]
  ]
  for (const [name, bound, cases] of bounds) {
    it(`${name}: pass on each side of the threshold`, () => {
      for (const [value, expected] of cases) {
        assert.equal(passes(value, bound), expected, `${value} ${name} ${JSON.stringify(bound)}`)
      }
    })
  }

  it('a figure that is not a number never passes', () => {
    assert.equal(passes(Number.NaN, { below: 2 }), false)
    assert.equal(passes(Number.NaN, { atLeast: 2 }), false)
  })

  it('needs every target: one missed fails the result, and each target says which', () => {
    const r = result(ctx, input({
      metrics: { p50: 1, p95: 9 },
      targets: [{ metric: 'p50', below: 2 }, { metric: 'p95', below: 5 }]
    }))
    assert.equal(r.pass, false)
    assert.deepEqual(r.targets?.map(t => [t.metric, (t as any).actual, (t as any).pass]), [['p50', 1, true], ['p95', 9, false]])
    assert.equal(r.target, 'p50 < 2 ms and p95 < 5 ms')
  })

  it('takes a target\'s figure from actual, with its own unit', () => {
    const r = result(ctx, input({ targets: [{ metric: 'worst case', actual: 900, below: 1_024, unit: 'bytes' }] }))
    assert.deepEqual(r.targets, [{ metric: 'worst case', op: '<', threshold: 1_024, unit: 'bytes', actual: 900, pass: true }])
    assert.equal(r.target, 'worst case < 1,024 bytes')
  })

  it('can hold a target on the ratio', () => {
    const fast = result(ctx, input({ value: 100, baseline: { name: 'slow', value: 2 }, targets: [{ metric: 'ratio', atLeast: 25 }] }))
    assert.equal(fast.ratio, 50)
    assert.equal(fast.pass, true)
    const slow = result(ctx, input({ value: 10, baseline: { name: 'slow', value: 2 }, targets: [{ metric: 'ratio', atLeast: 25 }] }))
    assert.equal(slow.pass, false)
  })

  it('a failed check fails the result even when every target holds, and is named in the target text', () => {
    const r = result(ctx, input({ checks: { 'every request rejected': false, 'one action per burst': true } }))
    assert.equal(r.pass, false)
    assert.deepEqual(r.checks, { 'every request rejected': false, 'one action per burst': true })
    assert.equal(r.target, 'value < 2 ms and every request rejected and one action per burst')
    assert.equal(result(ctx, input({ checks: { 'every request rejected': true } })).pass, true)
  })

  it('keeps a target text given by hand', () => {
    assert.equal(result(ctx, input({ target: 'p99 under 2 ms, as the target asks' })).target, 'p99 under 2 ms, as the target asks')
  })

  it('ratio: value / baseline to 3 significant digits, or the figures ratioOf names; none without a baseline or with a zero one', () => {
    assert.equal(result(ctx, input({ value: 1, baseline: { name: 'b', value: 3 } })).ratio, 0.333)
    const other = result(ctx, input({ baseline: { name: 'b', value: 3 }, ratioOf: { value: 2, baseline: 8, what: 'work per burst' } }))
    assert.equal(other.ratio, 0.25)
    assert.equal(other.ratioOf, 'work per burst')
    assert.equal('ratio' in result(ctx, input()), false)
    assert.equal('ratio' in result(ctx, input({ value: 0, baseline: { name: 'b', value: 0 } })), false)
  })

  it('refuses a target without exactly one bound, one on an unknown figure, and a metric or extra named like its own fields', () => {
    assert.throws(() => result(ctx, input({ targets: [{ metric: 'value' }] })), /exactly one of below, atMost, atLeast, above/)
    assert.throws(() => result(ctx, input({ targets: [{ metric: 'value', below: 2, atMost: 2 }] })), /exactly one/)
    assert.throws(() => result(ctx, input({ targets: [{ metric: 'p95', below: 2 }] })), /names p95/)
    assert.throws(() => result(ctx, input({ metrics: { pass: 1 } })), /"pass" is a field of the result/)
    assert.throws(() => result(ctx, input({ extra: { env: {} } })), /"env" is a field of the result/)
  })
})
