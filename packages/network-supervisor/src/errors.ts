/**
 * The supervisor's own errors; shared ones (`InvalidArgumentError`, `InvalidConfigError`,
 * `TimeoutError`, `AbortError`) come from `@holdfast/interface`. Match on `err.name`.
 */

import { HoldfastError } from '@holdfast/interface'

/** The supervisor is not running: `handle()` before start or after stop, or a caller waiting when it stopped */
export class SupervisorStoppedError extends HoldfastError {
  static name = 'SupervisorStoppedError'

  constructor (message = 'The network supervisor is stopped') {
    super(message)
  }
}

export interface StepFailure {
  /** e.g. `pause-reconnector`, `redial-relays` */
  step: string
  error: Error
}

/**
 * One or more steps of a recovery action failed; the others still ran, since one failed step
 * must not stop the rest of a recovery. The message lists every failed step, and becomes the
 * `NetworkEventResult.error` of each caller of the batch.
 */
export class RecoveryStepError extends HoldfastError {
  static name = 'RecoveryStepError'
  readonly failures: readonly StepFailure[]

  constructor (action: string, failures: readonly StepFailure[]) {
    super(`${action}: ${failures.map(f => `${f.step} failed: ${f.error.message}`).join('; ')}`)
    this.failures = failures
  }
}
