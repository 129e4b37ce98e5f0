/**
 * `holdfast demo`: a relay and three peers on 127.0.0.1 walk through every capability, each
 * step checked from the services' own state and events. Exit 0 only when every check held.
 */
import { createCast, STEPS, stopCast } from './demo-steps.ts'
import { newPsk } from './keygen.ts'
import { formatTable } from './output.ts'
import type { Command, CommandIo } from './command.ts'
import type { Cast, Check, Step } from './demo-steps.ts'

/** generous for a loaded CI machine: the slowest step (the WebRTC upgrade) takes ~1 s on loopback */
const STEP_TIMEOUT_MS = 30_000

export interface StepResult {
  step: number
  id: string
  title: string
  ok: boolean
  durationMs: number
  checks: Check[]
  /** set when the step threw (a wait ran out, a dial failed) */
  error?: string
}

/** one line per step for the summary table: the detail of the check the step names as its evidence */
function evidence (result: StepResult): string {
  if (result.error != null) {
    return result.error
  }
  const failed = result.checks.find(c => !c.ok)
  const telling = result.checks[STEPS.find(s => s.id === result.id)?.evidence ?? 0]
  return failed != null ? `failed: ${failed.name} (${failed.detail})` : telling?.detail ?? ''
}

export function summaryTable (results: StepResult[]): string[] {
  const rows = results.map(r => [String(r.step), r.title, r.ok ? 'ok' : 'FAILED', `${Math.round(r.durationMs)} ms`, evidence(r)])
  return formatTable([['#', 'step', 'result', 'time', 'evidence'], ...rows], { right: [3], rule: true })
}

async function runStep (step: Step, index: number, cast: Cast, io: CommandIo): Promise<StepResult> {
  const signal = AbortSignal.any([io.signal, AbortSignal.timeout(STEP_TIMEOUT_MS)])
  const started = performance.now()
  try {
    const checks = await step.run(cast, signal)
    return { step: index + 1, id: step.id, title: step.title, ok: checks.length > 0 && checks.every(c => c.ok), durationMs: performance.now() - started, checks }
  } catch (err: any) {
    return { step: index + 1, id: step.id, title: step.title, ok: false, durationMs: performance.now() - started, checks: [], error: String(err?.message ?? err) }
  }
}

export const demo: Command = {
  usage: 'holdfast demo [--json]               a relay and three peers on 127.0.0.1, every capability checked',
  options: { json: { type: 'boolean' } },
  async run (values, io) {
    const json = values.json === true
    const emit = (event: Record<string, unknown>): void => { io.print(JSON.stringify(event)) }
    const started = performance.now()
    if (!json) {
      io.print('holdfast demo: a realm relay and three peers on 127.0.0.1 (alice watches; bob has direct addresses; carol is behind a NAT: relay and WebRTC only)\n')
    }
    const cast = await createCast(newPsk())
    const results: StepResult[] = []
    try {
      if (json) {
        emit({ type: 'started', relay: cast.relay.getMultiaddrs().map(String), peers: { alice: cast.alice.peerId.toString(), bob: cast.bob.peerId.toString(), carol: cast.carol.peerId.toString() } })
      }
      for (const [index, step] of STEPS.entries()) {
        if (json) {
          emit({ type: 'step-started', step: index + 1, id: step.id, title: step.title })
        } else {
          io.print(`[${index + 1}/${STEPS.length}] ${step.title} ...`)
        }
        const result = await runStep(step, index, cast, io)
        results.push(result)
        if (json) {
          emit({ type: 'step', ...result })
        } else {
          for (const c of result.checks) {
            io.print(`      ${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`)
          }
          io.print(`      ${result.ok ? 'ok' : `FAILED${result.error != null ? `: ${result.error}` : ''}`} in ${Math.round(result.durationMs)} ms`)
        }
        // later steps build on earlier ones: stop at the first failure and say which it was
        if (!result.ok) {
          break
        }
      }
    } finally {
      await stopCast(cast)
    }
    const ok = results.length === STEPS.length && results.every(r => r.ok)
    const durationMs = performance.now() - started
    if (json) {
      emit({ type: 'summary', ok, durationMs, steps: results.map(({ step, id, title, ok, durationMs }) => ({ step, id, title, ok, durationMs })) })
    } else {
      io.print('')
      summaryTable(results).forEach(line => { io.print(line) })
      const failed = results.find(r => !r.ok)
      io.print(ok
        ? `\nall ${STEPS.length} steps verified in ${(durationMs / 1000).toFixed(1)} s`
        : `\nstep ${failed?.step ?? results.length + 1} (${failed?.title ?? 'interrupted'}) failed; ${STEPS.length - results.length} not run`)
    }
    return ok ? 0 : 1
  }
}
