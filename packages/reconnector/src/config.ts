/**
 * `reconnector(init)` checked and filled from the defaults once: every option that is wrong is
 * an `InvalidConfigError` naming it, before the service exists.
 */

import { checkDuration, checkNumber, InvalidConfigError, systemClock } from '@holdfast/interface'
import { defaults } from './constants.ts'
import type { ReconnectorInit } from './index.ts'
import type { BackoffConfig } from './policy.ts'
import type { Clock } from '@holdfast/interface'
import type { AbortOptions, PeerId } from '@libp2p/interface'

/** The numbers a reconnector runs with: the options listed in `defaults` */
export interface ReconnectConfig extends BackoffConfig {
  toleranceWindow: number
  crossingDelay: number
  stateHoldTime: number
  maxAttempts: number
}

export type DialFn = (peer: PeerId, options: AbortOptions) => Promise<unknown>

export interface ReconnectorConfig extends ReconnectConfig {
  clock: Clock
  random(): number
  watch?(peer: PeerId): boolean
  dial?: DialFn
}

export function configOf (init: ReconnectorInit): ReconnectorConfig {
  return { ...numbersOf(init), ...hooksOf(init) }
}

/** the options listed in `defaults`, each checked alone, then against each other */
function numbersOf (init: ReconnectorInit): ReconnectConfig {
  const config: ReconnectConfig = {
    toleranceWindow: checkDuration(init.toleranceWindow ?? defaults.toleranceWindow, 'toleranceWindow', 'config', { allowZero: true }),
    crossingDelay: checkDuration(init.crossingDelay ?? defaults.crossingDelay, 'crossingDelay', 'config', { allowZero: true }),
    stateHoldTime: checkDuration(init.stateHoldTime ?? defaults.stateHoldTime, 'stateHoldTime', 'config'),
    initialDelay: checkDuration(init.initialDelay ?? defaults.initialDelay, 'initialDelay', 'config'),
    maxDelay: checkDuration(init.maxDelay ?? defaults.maxDelay, 'maxDelay', 'config'),
    multiplier: checkNumber(init.multiplier ?? defaults.multiplier, 'multiplier', 'config', 1),
    jitter: checkNumber(init.jitter ?? defaults.jitter, 'jitter', 'config', 0, 1),
    maxAttempts: checkNumber(init.maxAttempts ?? defaults.maxAttempts, 'maxAttempts', 'config', 1)
  }
  if (config.jitter === 1) {
    throw new InvalidConfigError('jitter must be below 1, or a delay could be 0', 'jitter')
  }
  if (!Number.isSafeInteger(config.maxAttempts)) {
    throw new InvalidConfigError(`maxAttempts must be a whole number, got ${config.maxAttempts}`, 'maxAttempts')
  }
  if (config.maxDelay < config.initialDelay) {
    throw new InvalidConfigError(`maxDelay (${config.maxDelay}) must not be less than initialDelay (${config.initialDelay})`, 'maxDelay')
  }
  if (config.stateHoldTime <= config.toleranceWindow) {
    throw new InvalidConfigError(`stateHoldTime (${config.stateHoldTime}) must be longer than toleranceWindow (${config.toleranceWindow}), or no attempt is ever made`, 'stateHoldTime')
  }
  return config
}

/** the functions and the clock */
function hooksOf (init: ReconnectorInit): Omit<ReconnectorConfig, keyof ReconnectConfig> {
  for (const option of ['watch', 'dial', 'random'] as const) {
    if (init[option] !== undefined && typeof init[option] !== 'function') {
      throw new InvalidConfigError(`${option} must be a function`, option)
    }
  }
  const clock = init.clock ?? systemClock
  if (typeof clock?.now !== 'function' || typeof clock.setTimeout !== 'function' || typeof clock.clearTimeout !== 'function') {
    throw new InvalidConfigError('clock must have now, setTimeout and clearTimeout', 'clock')
  }
  return {
    clock,
    random: init.random ?? Math.random,
    ...(init.watch === undefined ? {} : { watch: init.watch }),
    ...(init.dial === undefined ? {} : { dial: init.dial })
  }
}
