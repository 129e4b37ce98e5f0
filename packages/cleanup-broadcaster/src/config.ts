/**
 * `cleanupBroadcaster(init)` checked and filled from the defaults once: every option that is
 * wrong is an `InvalidConfigError` naming it, before the service exists.
 */

import { InvalidConfigError, checkDuration, systemClock } from '@holdfast/interface'
import { defaults } from './constants.ts'
import { recovery } from './middleware.ts'
import { checkConditions } from './readiness.ts'
import type { CleanupBroadcasterInit } from './index.ts'
import type { Clock, Middleware } from '@holdfast/interface'

export interface BroadcasterConfig {
  closingWindowMs: number
  readyConditions: readonly string[]
  replaceConnections: boolean
  /** the chain in order, `recovery()` first when the init did not place it */
  middleware: readonly Middleware[]
  clock: Clock
}

export function configOf (init: CleanupBroadcasterInit | null | undefined): BroadcasterConfig {
  const given = init ?? {}
  const replaceConnections = given.replaceConnections ?? defaults.replaceConnections
  if (typeof replaceConnections !== 'boolean') {
    throw new InvalidConfigError('replaceConnections must be true or false', 'replaceConnections')
  }
  return {
    closingWindowMs: checkDuration(given.closingWindowMs ?? defaults.closingWindowMs, 'closingWindowMs', 'config', { allowZero: true }),
    readyConditions: checkConditions(given.readyConditions ?? defaults.readyConditions, 'readyConditions', 'config'),
    replaceConnections,
    middleware: chainOf(given.middleware ?? [recovery()]),
    clock: given.clock ?? systemClock
  }
}

/** Without `recovery()` one throwing handler would starve the others, so it is always there */
function chainOf (middleware: unknown): readonly Middleware[] {
  if (!Array.isArray(middleware) || middleware.some(m => typeof m !== 'function')) {
    throw new InvalidConfigError('middleware must be an array of middleware functions', 'middleware')
  }
  const chain = middleware as Middleware[]
  return chain.some(m => m.middlewareName === 'recovery') ? [...chain] : [recovery(), ...chain]
}
