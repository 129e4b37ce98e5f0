/**
 * `networkSupervisor(init)` checked and filled from the defaults once: every option that is
 * wrong is an `InvalidConfigError` naming it, before the service exists.
 */

import { checkDuration, InvalidConfigError, systemClock } from '@holdfast/interface'
import { defaults } from './constants.ts'
import type { NetworkAdapter, NetworkEventProcessor, NetworkSupervisorInit } from './index.ts'
import type { Clock } from '@holdfast/interface'

export interface NetworkSupervisorConfig {
  settleWindow: number
  resultTimeout: number
  probeTimeout: number
  longBackgroundThreshold: number
  debounceWindow: number
  /** undefined: the default processor */
  processor?: NetworkEventProcessor
  adapters: NetworkAdapter[]
  clock: Clock
}

const PROCESSOR_METHODS = ['offline', 'probe', 'restore', 'cleanupOnly', 'forceReconnect'] as const

export function configOf (init: NetworkSupervisorInit): NetworkSupervisorConfig {
  const { processor, adapters = [], clock = systemClock } = init
  if (processor !== undefined && (processor == null || PROCESSOR_METHODS.some(m => typeof processor?.[m] !== 'function'))) {
    throw new InvalidConfigError(`processor must implement ${PROCESSOR_METHODS.join(', ')}`, 'processor')
  }
  if (!Array.isArray(adapters) || adapters.some(a => typeof a?.start !== 'function' || typeof a?.stop !== 'function')) {
    throw new InvalidConfigError('adapters must be an array of { start, stop } adapters', 'adapters')
  }
  if (typeof clock?.now !== 'function' || typeof clock.setTimeout !== 'function' || typeof clock.clearTimeout !== 'function') {
    throw new InvalidConfigError('clock must have now, setTimeout and clearTimeout', 'clock')
  }
  return {
    settleWindow: checkDuration(init.settleWindow ?? defaults.settleWindow, 'settleWindow', 'config', { allowZero: true }),
    resultTimeout: checkDuration(init.resultTimeout ?? defaults.resultTimeout, 'resultTimeout', 'config'),
    probeTimeout: checkDuration(init.probeTimeout ?? defaults.probeTimeout, 'probeTimeout', 'config'),
    longBackgroundThreshold: checkDuration(init.longBackgroundThreshold ?? defaults.longBackgroundThreshold, 'longBackgroundThreshold', 'config', { allowZero: true }),
    debounceWindow: checkDuration(init.debounceWindow ?? defaults.debounceWindow, 'debounceWindow', 'config', { allowZero: true }),
    ...(processor === undefined ? {} : { processor }),
    adapters: [...adapters],
    clock
  }
}
