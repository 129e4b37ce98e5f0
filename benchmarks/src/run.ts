/**
 * `npm run bench [-- [--quick] [--list] [name...]]`
 *
 * Runs every benchmark (or the ones named), each in its own Node process so one benchmark's
 * JIT and heap state cannot colour another's, prints a table and writes
 * `benchmarks/results/<name>.json` for each. A missed target is reported (`pass: false`),
 * not thrown: the exit code is 0 unless a benchmark crashed (1) or the arguments are wrong (2).
 */

import { fork } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { broadcasterState } from './benches/broadcaster-state.ts'
import { cleanupLatency } from './benches/cleanup-latency.ts'
import { eventDelivery } from './benches/event-delivery.ts'
import { networkBatch } from './benches/network-batch.ts'
import { pathSelection } from './benches/path-selection.ts'
import { perConnectionOverhead } from './benches/per-connection-overhead.ts'
import { realmConnect } from './benches/realm-connect.ts'
import { realmConvergence } from './benches/realm-convergence.ts'
import { realmDhtFlood } from './benches/realm-dht-flood.ts'
import { realmReject } from './benches/realm-reject.ts'
import { realmRendezvous } from './benches/realm-rendezvous.ts'
import { reconnectFlap } from './benches/reconnect-flap.ts'
import { trim } from './benches/trim.ts'
import { upgrade } from './benches/upgrade.ts'
import { environment, err, formatNumber, formatRatio, out, resultsDir, table, writeResult } from './harness.ts'
import type { BenchContext, Benchmark, BenchEnv, BenchResult } from './harness.ts'

const BENCHMARKS: Benchmark[] = [cleanupLatency, eventDelivery, reconnectFlap, broadcasterState, trim, perConnectionOverhead, networkBatch, pathSelection, upgrade, realmConvergence, realmConnect, realmReject, realmRendezvous, realmDhtFlood]

const USAGE = `usage: npm run bench -- [--quick] [--list] [name...]
  --quick   fewer rounds (CI); the whole quick run takes under 3 minutes on 2 cores
  --list    list the benchmarks and exit
  name      run only these (default: all)`

/** the hidden flag of the child process that runs one benchmark */
const CHILD = '--child'

async function main (argv: string[]): Promise<number> {
  if (argv[0] === CHILD) {
    return child(argv[1], argv.includes('--quick'), environment(argv.includes('--quick')))
  }
  const flags = argv.filter(a => a.startsWith('-'))
  const names = argv.filter(a => !a.startsWith('-'))
  const unknownFlags = flags.filter(f => !['--quick', '--list', '--help', '-h'].includes(f))
  if (unknownFlags.length > 0) {
    err(`unknown option ${unknownFlags.join(', ')}\n${USAGE}`)
    return 2
  }
  if (flags.includes('--help') || flags.includes('-h')) {
    out(USAGE)
    return 0
  }
  if (flags.includes('--list')) {
    out(table(['benchmark', 'what'], BENCHMARKS.map(b => [b.name, b.description])))
    return 0
  }
  const unknown = names.filter(n => !BENCHMARKS.some(b => b.name === n))
  if (unknown.length > 0) {
    err(`unknown benchmark ${unknown.join(', ')}; known: ${BENCHMARKS.map(b => b.name).join(', ')}`)
    return 2
  }
  const selected = names.length === 0 ? BENCHMARKS : BENCHMARKS.filter(b => names.includes(b.name))
  const quick = flags.includes('--quick')
  const env = environment(quick)
  err(`holdfast benchmarks: ${selected.map(b => b.name).join(', ')}${quick ? ' (quick)' : ''} on node ${env.node}, ${env.cpus.count} x ${env.cpus.model}`)

  const results: BenchResult[] = []
  const crashed: string[] = []
  const started = performance.now()
  for (const benchmark of selected) {
    const t0 = performance.now()
    try {
      // a crashed benchmark must not leave an older run's file looking like its result
      await rm(new URL(`${benchmark.name}.json`, resultsDir), { force: true })
      const result = await runIsolated(benchmark.name, quick)
      results.push(result)
      err(`  [${benchmark.name}] done in ${((performance.now() - t0) / 1000).toFixed(1)} s -> benchmarks/results/${result.name}.json`)
    } catch (error) {
      crashed.push(benchmark.name)
      err(`  [${benchmark.name}] CRASHED: ${(error as Error).message}`)
    }
  }

  out()
  out(table(
    ['benchmark', 'value', 'unit', 'baseline', 'ratio', 'target', 'pass', 'samples'],
    results.map(r => [
      r.name,
      formatNumber(r.value),
      r.unit,
      r.baseline == null ? '-' : `${r.baseline.name} ${formatNumber(r.baseline.value)}`,
      formatRatio(r.ratio),
      r.target,
      r.pass ? 'yes' : 'NO',
      String(r.samples)
    ]).concat(crashed.map(name => [name, '-', '-', '-', '-', '-', 'CRASHED', '-']))
  ))
  for (const r of results) {
    printCases(r)
  }
  out(`\n${results.length} written to benchmarks/results/, ${crashed.length} crashed, ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return crashed.length > 0 ? 1 : 0
}

/** Runs one benchmark in a fresh Node process (same Node, --expose-gc) and returns its result */
async function runIsolated (name: string, quick: boolean): Promise<BenchResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [CHILD, name, ...(quick ? ['--quick'] : [])], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    let result: BenchResult | undefined
    child.on('message', (message) => { result = message as BenchResult })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      if (code === 0 && result != null) {
        resolve(result)
      } else {
        reject(new Error(`the benchmark process exited with ${signal ?? `code ${String(code)}`}${result == null ? ' without a result' : ''}`))
      }
    })
  })
}

/** In the child: run one benchmark, write its file, hand the result to the parent */
async function child (name: string, quick: boolean, env: BenchEnv): Promise<number> {
  const benchmark = BENCHMARKS.find(b => b.name === name)
  if (benchmark == null) {
    err(`unknown benchmark ${name}`)
    return 2
  }
  if ((globalThis as { gc?: unknown }).gc == null) {
    err(`  [${name}] note: no --expose-gc, GC cannot be forced between rounds`)
  }
  const ctx: BenchContext = {
    name,
    quick,
    env,
    log: (message) => { err(`  [${benchmark.name}] ${message}`) }
  }
  try {
    const result = await benchmark.run(ctx)
    await writeResult(result)
    await new Promise<void>((resolve, reject) => {
      if (process.send == null) {
        resolve() // run by hand, not by the parent: the file is the result
        return
      }
      process.send(result, (error: Error | null) => {
        if (error == null) {
          resolve()
        } else {
          reject(error)
        }
      })
    })
    return 0
  } catch (error) {
    err(`  [${benchmark.name}] ${(error as Error).stack ?? String(error)}`)
    return 1
  }
}

/** The per-case detail under the summary table */
function printCases (result: BenchResult): void {
  const cases = result.cases as Array<Record<string, unknown>> | undefined
  if (!Array.isArray(cases) || cases.length === 0) {
    return
  }
  const num = (v: unknown): string => typeof v === 'number' ? formatNumber(v) : '-'
  out(`\n${result.name} (${result.unit})`)
  const figures = (c: Record<string, unknown>, figure: string, key: string): string => num((c[figure] as Record<string, unknown> | undefined)?.[key])
  if (cases.some(c => c.decideAndInitiate != null)) {
    // the trim's two figures of each case, from the same call
    out(table(
      ['case', 'role', 'decide+start p50', 'p95', 'end-to-end p50', 'p95'],
      cases.map(c => [String(c.name), String(c.role ?? ''), figures(c, 'decideAndInitiate', 'median'), figures(c, 'decideAndInitiate', 'p95'), figures(c, 'endToEnd', 'median'), figures(c, 'endToEnd', 'p95')])
    ))
  } else if (cases.some(c => c.openToClose != null)) {
    // realm-reject: outsider's connection:open -> the listener's connection:close
    out(table(
      ['case', 'role', 'open->close p50', 'p95', 'past authTimeout p50', 'p95', 'rounds'],
      cases.map(c => [String(c.name), String(c.role ?? ''), figures(c, 'openToClose', 'p50'), figures(c, 'openToClose', 'p95'), figures(c, 'pastTimeout', 'p50'), figures(c, 'pastTimeout', 'p95'), figures(c, 'openToClose', 'samples')])
    ))
  } else if (cases.some(c => c.meet != null)) {
    // realm-rendezvous: both members started -> both member:joined
    out(table(
      ['case', 'role', 'meet p50', 'p95', 'max', 'reserved p50', 'authenticated', 'rounds'],
      cases.map(c => [String(c.name), String(c.role ?? ''), figures(c, 'meet', 'p50'), figures(c, 'meet', 'p95'), figures(c, 'meet', 'max'), figures(c, 'reserved', 'p50'), num(c.authenticatedBothWays), num(c.rounds)])
    ))
  } else if (cases.some(c => c.totalGrowthMB != null)) {
    // realm-dht-flood: the member's memory growth and stored records per run
    const flood = (c: Record<string, unknown>, key: string): string => num((c.flood as Record<string, unknown> | undefined)?.[key])
    out(table(
      ['case', 'role', 'heap+arrayBuffers MB', 'heapUsed MB', 'stored', 'attempts', 'answered', 'flood ms'],
      cases.map(c => [String(c.name), String(c.role ?? ''), num(c.totalGrowthMB), num(c.heapUsedGrowthMB), num(c.storedFromOutsiders), flood(c, 'attempts'), flood(c, 'answered'), flood(c, 'ms')])
    ))
  } else if (result.unit === 'ms') {
    // top-level stats of a case: from the trigger (abort); closeToEnd: from the libp2p close event
    out(table(
      ['case', 'abort->end p50', 'p95', 'p99', 'close->end p50', 'p95', 'p99', 'rounds'],
      cases.map(c => [String(c.name), num(c.p50), num(c.p95), num(c.p99), figures(c, 'closeToEnd', 'p50'), figures(c, 'closeToEnd', 'p95'), figures(c, 'closeToEnd', 'p99'), num(c.rounds)])
    ))
  } else {
    out(table(['case', 'role', 'median', 'p5', 'min', 'ns/delivery', 'x baseline'], cases.map(c => [String(c.name), String(c.role ?? ''), num(c.median), num(c.p5), num(c.min), num(c.nsPerDelivery), formatRatio(c.ratioToBaseline as number | undefined)])))
  }
  const comparisons = result.comparisons as Array<Record<string, unknown>> | undefined
  for (const c of comparisons ?? []) {
    out(`  comparison ${String(c.name)}: ${num(c.value)} ${String(c.unit ?? result.unit)}${c.measured === false ? ' (configured, not measured)' : ''}`)
  }
}

main(process.argv.slice(2)).then(code => {
  // libp2p may leave unref'd handles behind; the results are written, so exit now
  process.exit(code)
}, error => {
  err(String((error as Error).stack ?? error))
  process.exit(1)
})
