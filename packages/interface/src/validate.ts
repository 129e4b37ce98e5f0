/**
 * The checks every holdfast service runs on what it is given, so the same bad value gets the
 * same typed error everywhere: `InvalidConfigError` naming the init option, or
 * `InvalidArgumentError` naming the argument of a call.
 */

import { isPeerId } from '@libp2p/interface'
import { InvalidArgumentError, InvalidConfigError } from './errors.ts'
import type { AbortOptions, PeerId } from '@libp2p/interface'

/**
 * The longest duration a timer can wait: `setTimeout` clamps anything of 2³¹ ms or more to
 * 1 ms, so a longer value would fire at once instead of (practically) never.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1

/** Whether a bad value came from the service's init (`config`) or from a call (`argument`) */
export type InputKind = 'config' | 'argument'

export interface DurationOptions {
  /** whether 0 is a valid value (it often means "off") */
  allowZero?: boolean
  /** the largest valid value, at most (and by default) `MAX_DURATION_MS` */
  max?: number
}

/** The typed error for a bad `name` of `kind`: `InvalidConfigError` or `InvalidArgumentError`, naming it */
export function invalidInput (kind: InputKind, name: string, message: string): Error {
  return kind === 'config' ? new InvalidConfigError(message, name) : new InvalidArgumentError(message, name)
}

/** What is wrong with a duration in ms, or undefined when it is a valid one */
export function durationProblem (value: unknown, opts: DurationOptions = {}): string | undefined {
  const max = Math.min(opts.max ?? MAX_DURATION_MS, MAX_DURATION_MS)
  const min = opts.allowZero === true ? 'at least 0' : 'above 0'
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (value === 0 && opts.allowZero !== true) || value > max) {
    return `must be a number of ms ${min} and at most ${max}, got ${String(value)}`
  }
  return undefined
}

/** `value` as a duration in ms, or a typed error naming `name` */
export function checkDuration (value: unknown, name: string, kind: InputKind, opts?: DurationOptions): number {
  const problem = durationProblem(value, opts)
  if (problem !== undefined) {
    throw invalidInput(kind, name, `${name} ${problem}`)
  }
  return value as number
}

/** `value` as a finite number within `[min, max]`, or a typed error naming `name` */
export function checkNumber (value: unknown, name: string, kind: InputKind, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalidInput(kind, name, `${name} must be a finite number from ${min} to ${max}, got ${String(value)}`)
  }
  return value
}

/** `value` as a whole number within `[min, max]`, or a typed error naming `name` */
export function checkInteger (value: unknown, name: string, kind: InputKind, min = -Infinity, max = Infinity): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    throw invalidInput(kind, name, `${name} must be a whole number from ${min} to ${max}, got ${String(value)}`)
  }
  return value as number
}

/** `value` as a peer ID, or `InvalidArgumentError` naming `name` */
export function checkPeerId (value: unknown, name = 'peer'): PeerId {
  if (!isPeerId(value)) {
    throw new InvalidArgumentError(`${name} must be a PeerId, got ${describe(value)}`, name)
  }
  return value
}

/** `value` as an optional `AbortSignal`, or `InvalidArgumentError` naming `name` */
export function checkSignal (value: unknown, name = 'signal'): AbortSignal | undefined {
  if (value != null && !(value instanceof AbortSignal)) {
    throw new InvalidArgumentError(`${name} must be an AbortSignal, got ${describe(value)}`, name)
  }
  return value ?? undefined
}

/**
 * Call options as given: null or undefined become `{}`, anything else must be an object whose
 * `signal`, if any, is an `AbortSignal`.
 */
export function checkOptions<T extends AbortOptions> (value: T | null | undefined, name = 'options'): T {
  if (value == null) {
    return {} as unknown as T
  }
  if (typeof value !== 'object') {
    throw new InvalidArgumentError(`${name} must be an object, got ${describe(value)}`, name)
  }
  checkSignal(value.signal, `${name}.signal`)
  return value
}

function describe (value: unknown): string {
  return value === null ? 'null' : typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value
}
