/**
 * `watermarkConnectionManager(init)` checked and filled from the defaults once, and the same
 * checks for `setLimits()`: a wrong option is an `InvalidConfigError` naming it, before the
 * service exists; a wrong limit is an `InvalidArgumentError` naming it, and nothing changes.
 */

import { checkDuration, checkInteger, invalidInput, InvalidArgumentError, InvalidConfigError, systemClock } from '@holdfast/interface'
import { defaults } from './constants.ts'
import { defaultHysteresis, defaultScore } from './policy.ts'
import type { WatermarkConnectionManagerInit } from './index.ts'
import type { Settings } from './policy.ts'
import type { Clock, InputKind, Limits, ScoreFn } from '@holdfast/interface'

export interface Config {
  settings: Settings
  score: ScoreFn
  clock: Clock
  /** the hysteresis the app chose; undefined follows the watermarks */
  hysteresis: number | undefined
}

/** What `setLimits` may change */
const LIMITS: ReadonlyArray<keyof Limits> = ['lowWater', 'highWater', 'gracePeriod', 'silencePeriod', 'maxInbound', 'maxOutbound', 'idleTimeout']

export function configOf (init: WatermarkConnectionManagerInit): Config {
  if (init.score != null && typeof init.score !== 'function') {
    throw new InvalidConfigError('score must be a function', 'score')
  }
  const lowWater = init.lowWater ?? defaults.lowWater
  const highWater = init.highWater ?? defaults.highWater
  const settings = checkSettings({
    lowWater,
    highWater,
    gracePeriod: init.gracePeriod ?? defaults.gracePeriod,
    silencePeriod: init.silencePeriod ?? defaults.silencePeriod,
    maxInbound: init.maxInbound ?? defaults.maxInbound,
    maxOutbound: init.maxOutbound ?? defaults.maxOutbound,
    idleTimeout: init.idleTimeout ?? defaults.idleTimeout,
    trimMode: init.trimMode ?? defaults.trimMode,
    hysteresis: init.hysteresis ?? defaultHysteresis(defaults.hysteresis, lowWater, highWater)
  }, 'config')
  return { settings, score: init.score ?? defaultScore, clock: init.clock ?? systemClock, hysteresis: init.hysteresis }
}

/** The settings after `setLimits(limits)`, checked as a whole */
export function withLimits (config: Config, current: Settings, limits: Partial<Limits>): Settings {
  if (limits == null || typeof limits !== 'object') {
    throw new InvalidArgumentError('limits must be an object', 'limits')
  }
  for (const name of Object.keys(limits)) {
    if (!(LIMITS as string[]).includes(name)) {
      throw new InvalidArgumentError(`${name} is not a limit setLimits can change (${LIMITS.join(', ')})`, name)
    }
  }
  const next: Settings = { ...current, ...limits }
  next.hysteresis = config.hysteresis ?? defaultHysteresis(defaults.hysteresis, next.lowWater, next.highWater)
  return checkSettings(next, 'argument')
}

/** `settings` when they can be honoured; else the typed error of `kind`, naming the first option wrong */
function checkSettings (settings: Settings, kind: InputKind): Settings {
  const { lowWater, highWater } = settings
  checkInteger(lowWater, 'lowWater', kind, 1)
  checkInteger(highWater, 'highWater', kind, lowWater + 1)
  checkDuration(settings.gracePeriod, 'gracePeriod', kind, { allowZero: true })
  checkDuration(settings.silencePeriod, 'silencePeriod', kind, { allowZero: true })
  for (const name of ['maxInbound', 'maxOutbound'] as const) {
    if (settings[name] !== Infinity) {
      checkInteger(settings[name], name, kind, 0)
    }
  }
  if (settings.idleTimeout !== Infinity) {
    checkDuration(settings.idleTimeout, 'idleTimeout', kind)
  }
  if (settings.trimMode !== 'batch' && settings.trimMode !== 'incremental') {
    throw invalidInput(kind, 'trimMode', `trimMode must be 'batch' or 'incremental', got ${String(settings.trimMode)}`)
  }
  checkInteger(settings.hysteresis, 'hysteresis', kind, 1, highWater - lowWater)
  return settings
}
