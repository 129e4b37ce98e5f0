/**
 * The small benchmark harness: how a benchmark is declared (its sizes for quick and full runs),
 * statistics, the run environment, the JSON result file and the human table. No benchmark
 * logic here; the result builder is in result.ts, shared node setup in setup.ts.
 */

import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'

export interface BenchEnv {
  node: string
  platform: string
  arch: string
  cpus: { model: string, count: number }
  quick: boolean
  date: string
}

export interface BenchContext {
  /** the benchmark's name: its result file is `benchmarks/results/<name>.json` */
  name: string
  /** `--quick`: fewer rounds, for CI (the whole quick run stays under 3 minutes on 2 cores) */
  quick: boolean
  env: BenchEnv
  /** progress line on stderr, so stdout stays the table */
  log(message: string): void
}

/** The machine-readable side of `target` */
export interface TargetSpec {
  /** the statistic compared (`p99`, `value`, a case name...) */
  metric: string
  op: '<' | '<=' | '>' | '>='
  threshold: number
  unit: string
}

/** `benchmarks/results/<name>.json`. Extra fields are allowed. */
export interface BenchResult {
  name: string
  unit: string
  value: number
  baseline?: { name: string, value: number, [extra: string]: unknown }
  ratio?: number
  /** human readable, e.g. "p99 < 2 ms" */
  target: string
  targets?: TargetSpec[]
  pass: boolean
  /** how many timed samples `value` is computed from */
  samples: number
  env: BenchEnv
  [extra: string]: unknown
}

export interface Benchmark {
  name: string
  /** one line for `--list` and the README */
  description: string
  run(ctx: BenchContext): Promise<BenchResult>
}

/** What `--quick` changes, each count as `[quick, full]` */
export type Sizes<K extends string> = Record<K, readonly [quick: number, full: number]>

export interface BenchmarkDefinition<K extends string> extends Omit<Benchmark, 'run'> {
  sizes?: Sizes<K>
  /** `sizes` holds the counts of this run, quick or full */
  run(ctx: BenchContext, sizes: Record<K, number>): Promise<BenchResult>
}

/** A benchmark whose round counts (and other sizes) are declared once, quick and full side by side */
export function benchmark<K extends string = never> (definition: BenchmarkDefinition<K>): Benchmark {
  const { sizes, run, ...rest } = definition
  return {
    ...rest,
    run: async (ctx) => {
      const chosen = Object.fromEntries(Object.entries<readonly [number, number]>(sizes ?? {}).map(([key, [quick, full]]) => [key, ctx.quick ? quick : full]))
      return run(ctx, chosen as Record<K, number>)
    }
  }
}

export interface Summary {
  samples: number
  min: number
  mean: number
  p50: number
  p95: number
  p99: number
  max: number
}

/** Nearest-rank percentile (p in 0..100) of an already sorted array */
export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) {
    return Number.NaN
  }
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

export function summarize (values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b)
  const sum = sorted.reduce((total, v) => total + v, 0)
  return {
    samples: sorted.length,
    min: sorted[0] ?? Number.NaN,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN
  }
}

/** The summary with every figure but `samples` rounded to `digits` significant digits */
export function roundSummary (s: Summary, digits = 4): Summary {
  return { samples: s.samples, min: round(s.min, digits), mean: round(s.mean, digits), p50: round(s.p50, digits), p95: round(s.p95, digits), p99: round(s.p99, digits), max: round(s.max, digits) }
}

/** The case (or run) of that name; a missing one is a bug of the benchmark */
export function named<T extends { name: string }> (items: readonly T[], name: string): T {
  const found = items.find(item => item.name === name)
  if (found == null) {
    throw new Error(`no case ${name}`)
  }
  return found
}

export function median (values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50)
}

/** A line on stdout (the table) */
export function out (line = ''): void {
  process.stdout.write(`${line}\n`)
}

/** A line on stderr (progress, problems), so stdout stays the table */
export function err (line: string): void {
  process.stderr.write(`${line}\n`)
}

/** Rounds to `digits` significant digits, for JSON that stays readable */
export function round (value: number, digits = 4): number {
  if (!Number.isFinite(value) || value === 0) {
    return value
  }
  return Number(value.toPrecision(digits))
}

export function roundAll<T extends Record<string, number>> (values: T, digits = 4): T {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, round(v, digits)])) as T
}

export function environment (quick: boolean): BenchEnv {
  const cpus = os.cpus()
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpus: { model: cpus[0]?.model?.trim() ?? 'unknown', count: cpus.length },
    quick,
    date: new Date().toISOString()
  }
}

/** A full GC when the process runs with `--expose-gc` (the `bench` script passes it); never inside a timed window */
export function collectGarbage (): void {
  const { gc } = globalThis as { gc?(): void }
  gc?.()
}

/** Lets pending I/O callbacks and timers run */
export async function settle (): Promise<void> {
  await new Promise(resolve => setImmediate(resolve))
}

const COMPARISONS: Record<TargetSpec['op'], (value: number, threshold: number) => boolean> = {
  '<': (value, threshold) => value < threshold,
  '<=': (value, threshold) => value <= threshold,
  '>': (value, threshold) => value > threshold,
  '>=': (value, threshold) => value >= threshold
}

export function compare (value: number, op: TargetSpec['op'], threshold: number): boolean {
  return COMPARISONS[op](value, threshold)
}

export const resultsDir = new URL('../results/', import.meta.url)

export async function writeResult (result: BenchResult): Promise<string> {
  await mkdir(resultsDir, { recursive: true })
  const file = new URL(`${result.name}.json`, resultsDir)
  await writeFile(file, JSON.stringify(result, null, 2) + '\n')
  return file.pathname
}

/** Formats a number for the table: thousands separators, a sensible number of decimals */
export function formatNumber (value: number): string {
  if (!Number.isFinite(value)) {
    return String(value)
  }
  const abs = Math.abs(value)
  let digits = 4
  if (abs >= 1000) {
    digits = 0
  } else if (abs >= 100) {
    digits = 1
  } else if (abs >= 1) {
    digits = 2
  } else if (abs >= 0.01) {
    digits = 3
  }
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })
}

export function formatRatio (ratio: number | undefined): string {
  if (ratio === undefined || !Number.isFinite(ratio)) {
    return '-'
  }
  return ratio >= 0.01 ? `${ratio.toFixed(2)}x` : `${ratio.toExponential(1)}x`
}

/** A plain aligned text table */
export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd()
  return [line(header), widths.map(w => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}
