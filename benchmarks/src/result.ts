/**
 * The result builder: a benchmark states its figures and its targets once, and the result file's
 * `pass`, `ratio`, `target` (for people) and `targets` (for machines) follow from them.
 */

import { compare, round } from './harness.ts'
import type { BenchContext, BenchResult, TargetSpec } from './harness.ts'

/** The bound of a target, one of four: `{ below: 2 }` is "< 2", `{ atMost: 3 }` "<= 3" */
const BOUNDS = { below: '<', atMost: '<=', atLeast: '>=', above: '>' } as const satisfies Record<string, TargetSpec['op']>

type Bound = keyof typeof BOUNDS

/**
 * One target: a figure and exactly one bound. `metric` names the figure: `value`, `ratio`, a key
 * of the result's `metrics`, or, with `actual`, any label for a figure found elsewhere (a case's
 * p95, the worst of several cases).
 */
export type Target = {
  metric: string
  /** the figure when `metric` is not `value`, `ratio` or one of the `metrics` */
  actual?: number
  /** @default the result's unit */
  unit?: string
} & Partial<Record<Bound, number>>

/** A target as the file has it: `TargetSpec` plus the figure compared and whether it held */
export interface TargetResult extends TargetSpec {
  actual: number
  pass: boolean
}

export interface ResultInput {
  unit: string
  /** the figure the (first) target is about */
  value: number
  /** how `value` is computed, for people */
  statistic?: string
  /** named figures written at the top level of the file (p50, p95...); a target can name them */
  metrics?: Record<string, number>
  /** measured in the same run; `ratio` is `value / baseline.value` unless `ratioOf` says otherwise */
  baseline?: { name: string, value: number, [extra: string]: unknown }
  /** when the ratio compares two other figures: those, and what they are */
  ratioOf?: { value: number, baseline: number, what: string }
  targets: Target[]
  /**
   * conditions the pass needs beside the targets (every request rejected, exactly one action...),
   * each named by what it checks
   */
  checks?: Record<string, boolean>
  /** the target for people, when the one derived from `targets` and `checks` says too little */
  target?: string
  /** how many timed samples `value` is computed from */
  samples: number
  /** everything else the file carries: cases, comparisons, notes... */
  extra?: Record<string, unknown>
}

/** Fields the builder writes itself: `metrics` and `extra` may not use them */
const OWN_FIELDS = new Set(['name', 'unit', 'value', 'statistic', 'baseline', 'ratio', 'ratioOf', 'target', 'targets', 'checks', 'pass', 'samples', 'env'])

/**
 * The result file of one run: `pass` holds when every target and every check does; `ratio` is
 * `value / baseline.value` (or `ratioOf`), left out when there is no baseline or it is zero.
 * Throws on a target without exactly one bound or naming an unknown figure, and on a metric or
 * extra field that would overwrite one of the builder's own: those are mistakes in a benchmark,
 * not results.
 */
export function result (ctx: Pick<BenchContext, 'name' | 'env'>, input: ResultInput): BenchResult {
  const metrics = input.metrics ?? {}
  const extra = input.extra ?? {}
  for (const key of [...Object.keys(metrics), ...Object.keys(extra)]) {
    if (OWN_FIELDS.has(key)) {
      throw new Error(`${ctx.name}: "${key}" is a field of the result itself, not a metric or an extra`)
    }
  }
  const ratio = ratioOf(input)
  const figures: Record<string, number | undefined> = { ...metrics, value: input.value, ratio }
  const targets = input.targets.map(target => targetResult(ctx.name, target, figures, input.unit))
  const checks = input.checks ?? {}
  const pass = targets.every(t => t.pass) && Object.values(checks).every(ok => ok)
  return {
    name: ctx.name,
    unit: input.unit,
    value: input.value,
    ...(input.statistic == null ? {} : { statistic: input.statistic }),
    ...(input.baseline == null ? {} : { baseline: input.baseline }),
    ...(ratio == null ? {} : { ratio }),
    ...(input.ratioOf == null ? {} : { ratioOf: input.ratioOf.what }),
    target: input.target ?? describe(targets, checks),
    targets,
    ...(input.checks == null ? {} : { checks }),
    pass,
    samples: input.samples,
    env: ctx.env,
    ...metrics,
    ...extra
  }
}

function ratioOf (input: ResultInput): number | undefined {
  const [value, baseline] = input.ratioOf != null
    ? [input.ratioOf.value, input.ratioOf.baseline]
    : [input.value, input.baseline?.value ?? Number.NaN]
  const ratio = value / baseline
  return Number.isFinite(ratio) ? round(ratio, 3) : undefined
}

function targetResult (name: string, target: Target, figures: Record<string, number | undefined>, unit: string): TargetResult {
  const bounds = (Object.keys(BOUNDS) as Bound[]).filter(bound => target[bound] != null)
  if (bounds.length !== 1) {
    throw new Error(`${name}: the target on ${target.metric} needs exactly one of ${Object.keys(BOUNDS).join(', ')}`)
  }
  const actual = target.actual ?? figures[target.metric]
  if (actual == null) {
    throw new Error(`${name}: the target names ${target.metric}, which is not value, ratio or a metric; give its actual figure`)
  }
  const op = BOUNDS[bounds[0]]
  const threshold = target[bounds[0]] as number
  return { metric: target.metric, op, threshold, unit: target.unit ?? unit, actual, pass: compare(actual, op, threshold) }
}

/** "p99 < 2 ms and every request rejected": the targets, then the names of the checks */
function describe (targets: TargetResult[], checks: Record<string, boolean>): string {
  return [
    ...targets.map(t => `${t.metric} ${t.op} ${t.threshold.toLocaleString('en-US')} ${t.unit}`),
    ...Object.keys(checks)
  ].join(' and ')
}
