/**
 * `pathSelector(init)` checked and filled from the defaults once: every option that is wrong
 * is an `InvalidConfigError` naming it, before the service exists.
 */

import { checkDuration, checkNumber, InvalidConfigError, systemClock } from '@holdfast/interface'
import { DEFAULT_NAT, defaults, PRESETS } from './constants.ts'
import { isNatType, NAT_TYPES, selectPath } from './policy.ts'
import type { PathSelectorInit } from './index.ts'
import type { KeepAlivePreset, NatType, PresetName, SelectPath } from './policy.ts'
import type { Clock } from '@holdfast/interface'
import type { PeerId } from '@libp2p/interface'

export interface PathSelectorConfig {
  preset: Readonly<KeepAlivePreset>
  upgrade: boolean
  keepRelayBackup: boolean
  rttAlpha: number
  failuresToDemote: number
  localNat: NatType
  natOf(peer: PeerId): NatType
  selectPath: SelectPath
  upgradeTimeoutMs: number
  upgradeMaxAttempts: number
  retryInitialDelayMs: number
  retryMaxDelayMs: number
  clock: Clock
}

const unknownNat = (): NatType => DEFAULT_NAT

export function configOf (init: PathSelectorInit): PathSelectorConfig {
  if (init == null || typeof init !== 'object') {
    throw new InvalidConfigError('init must be an object', 'init')
  }
  const rttAlpha = checkNumber(init.rttAlpha ?? defaults.rttAlpha, 'rttAlpha', 'config', 0, 1)
  if (rttAlpha === 0) {
    throw new InvalidConfigError('rttAlpha must be above 0: a weight of 0 would never move the average', 'rttAlpha')
  }
  const retryInitialDelayMs = checkDuration(init.retryInitialDelayMs ?? defaults.retryInitialDelayMs, 'retryInitialDelayMs', 'config')
  const retryMaxDelayMs = checkDuration(init.retryMaxDelayMs ?? defaults.retryMaxDelayMs, 'retryMaxDelayMs', 'config')
  if (retryMaxDelayMs < retryInitialDelayMs) {
    throw new InvalidConfigError(`retryMaxDelayMs (${retryMaxDelayMs}) must be at least retryInitialDelayMs (${retryInitialDelayMs})`, 'retryMaxDelayMs')
  }
  return {
    preset: resolvePreset(init.preset ?? defaults.preset),
    upgrade: flag(init.upgrade ?? defaults.upgrade, 'upgrade'),
    keepRelayBackup: flag(init.keepRelayBackup ?? defaults.keepRelayBackup, 'keepRelayBackup'),
    rttAlpha,
    failuresToDemote: count(init.failuresToDemote ?? defaults.failuresToDemote, 'failuresToDemote', 1),
    localNat: natType(init.localNat ?? defaults.localNat),
    natOf: fn(init.natOf ?? unknownNat, 'natOf'),
    selectPath: fn<SelectPath>(init.selectPath ?? selectPath, 'selectPath'),
    upgradeTimeoutMs: checkDuration(init.upgradeTimeoutMs ?? defaults.upgradeTimeoutMs, 'upgradeTimeoutMs', 'config'),
    upgradeMaxAttempts: count(init.upgradeMaxAttempts ?? defaults.upgradeMaxAttempts, 'upgradeMaxAttempts', 0),
    retryInitialDelayMs,
    retryMaxDelayMs,
    clock: clock(init.clock ?? systemClock)
  }
}

/**
 * A preset by name, or a custom one checked: every value a duration in ms, and the keep-alive
 * period and the heartbeat below the idle timeout, or the path would be dropped before it is
 * kept alive.
 */
export function resolvePreset (preset: PresetName | KeepAlivePreset): Readonly<KeepAlivePreset> {
  if (typeof preset === 'string') {
    if (!Object.hasOwn(PRESETS, preset)) {
      throw new InvalidConfigError(`unknown preset "${preset}"; known: ${Object.keys(PRESETS).join(', ')}`, 'preset')
    }
    return PRESETS[preset]
  }
  if (preset == null || typeof preset !== 'object') {
    throw new InvalidConfigError('preset must be a preset name or { idleTimeoutMs, heartbeatIntervalMs, keepAlivePeriodMs }', 'preset')
  }
  for (const key of ['idleTimeoutMs', 'heartbeatIntervalMs', 'keepAlivePeriodMs'] as const) {
    checkDuration(preset[key], `preset.${key}`, 'config')
  }
  for (const key of ['keepAlivePeriodMs', 'heartbeatIntervalMs'] as const) {
    if (preset[key] >= preset.idleTimeoutMs) {
      throw new InvalidConfigError(`preset.${key} (${preset[key]}) must be below preset.idleTimeoutMs (${preset.idleTimeoutMs})`, `preset.${key}`)
    }
  }
  return Object.freeze({ idleTimeoutMs: preset.idleTimeoutMs, heartbeatIntervalMs: preset.heartbeatIntervalMs, keepAlivePeriodMs: preset.keepAlivePeriodMs })
}

function flag (value: unknown, option: string): boolean {
  if (typeof value !== 'boolean') {
    throw new InvalidConfigError(`${option} must be true or false, got ${String(value)}`, option)
  }
  return value
}

/** A whole number from `min` on */
function count (value: unknown, option: string, min: number): number {
  const n = checkNumber(value, option, 'config', min)
  if (!Number.isInteger(n)) {
    throw new InvalidConfigError(`${option} must be a whole number, got ${n}`, option)
  }
  return n
}

function natType (value: unknown): NatType {
  if (!isNatType(value)) {
    throw new InvalidConfigError(`localNat must be one of ${NAT_TYPES.join(', ')}, got ${String(value)}`, 'localNat')
  }
  return value
}

function fn<T> (value: T, option: string): T {
  if (typeof value !== 'function') {
    throw new InvalidConfigError(`${option} must be a function, got ${value === null ? 'null' : typeof value}`, option)
  }
  return value
}

function clock (value: unknown): Clock {
  const c = value as Partial<Clock> | null
  if (c == null || typeof c.now !== 'function' || typeof c.setTimeout !== 'function' || typeof c.clearTimeout !== 'function') {
    throw new InvalidConfigError('clock must be { now, setTimeout, clearTimeout }', 'clock')
  }
  return value as Clock
}
