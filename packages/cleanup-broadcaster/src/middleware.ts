/**
 * The seven middleware and the two presets. A middleware is `(event, next) => void`;
 * `attach` hands it the broadcaster's logger, clock, metrics and counters.
 */

import { InvalidArgumentError, checkDuration, checkNumber, isHoldfastEventType } from '@holdfast/interface'
import { isPeerId } from '@libp2p/interface'
import { PRODUCTION_HANDLER_BUDGET_MS } from './constants.ts'
import type { HoldfastEvent, HoldfastEvents, HoldfastEventType, Middleware, MiddlewareContext } from '@holdfast/interface'

function named (name: string, run: Middleware, attach?: (context: MiddlewareContext) => void, detach?: () => void): Middleware {
  run.middlewareName = name
  run.attach = attach
  run.detach = detach
  return run
}

function unattached (): never {
  throw new Error('middleware used before being added with use()')
}

/**
 * Isolates handlers: a throwing or rejecting handler is counted (`stats().handlerErrors`) and
 * logged, and the other handlers still get the event. The broadcaster always has one.
 */
export function recovery (): Middleware {
  let context: MiddlewareContext | undefined
  return named('recovery', (event, next) => {
    next()
    if (event.errors == null && event.pending == null) {
      return
    }
    const ctx = context ?? unattached()
    for (const error of event.errors ?? []) {
      ctx.reportHandlerError(error, event)
    }
    for (const pending of event.pending ?? []) {
      pending.then(undefined, (error: unknown) => { ctx.reportHandlerError(error, event) })
    }
  }, c => { context = c })
}

/** Logs every event at trace level (`DEBUG=holdfast:cleanup-broadcaster*`). Costs one property read when disabled. */
export function logging (): Middleware {
  let context: MiddlewareContext | undefined
  return named('logging', (event, next) => {
    const log = (context ?? unattached()).log
    if (log.enabled) {
      log.trace('%s %o', event.type, event.detail)
    }
    next()
  }, c => { context = c })
}

export interface HandlerTimes {
  count: number
  totalMs: number
  maxMs: number
}

export interface MetricsMiddleware extends Middleware {
  /** synchronous delivery time per event type, measured whether or not libp2p metrics are on */
  handlerTimes(): Partial<Record<HoldfastEventType, HandlerTimes>>
}

/**
 * Counts events by type and measures synchronous delivery time. With `components.metrics`
 * present, also records `holdfast_cleanup_broadcaster_events_total{type}` and
 * `holdfast_cleanup_broadcaster_delivery_seconds`.
 */
export function metrics (): MetricsMiddleware {
  const times = new Map<HoldfastEventType, HandlerTimes>()
  let events: { increment(values: Record<string, true>): void } | undefined
  let delivery: { observe(value: number): void } | undefined

  const run = named('metrics', (event, next) => {
    const start = performance.now()
    next()
    const ms = performance.now() - start
    let entry = times.get(event.type)
    if (entry == null) {
      entry = { count: 0, totalMs: 0, maxMs: 0 }
      times.set(event.type, entry)
    }
    entry.count++
    entry.totalMs += ms
    if (ms > entry.maxMs) {
      entry.maxMs = ms
    }
    events?.increment({ [event.type]: true })
    delivery?.observe(ms / 1000)
  }, context => {
    events = context.metrics?.registerCounterGroup('holdfast_cleanup_broadcaster_events_total', { label: 'type', help: 'Events published through the broadcaster, by type' })
    delivery = context.metrics?.registerHistogram('holdfast_cleanup_broadcaster_delivery_seconds', { help: 'Synchronous delivery time of one event to all its handlers' })
  }, () => { times.clear() }) as MetricsMiddleware

  run.handlerTimes = () => Object.fromEntries([...times].map(([type, t]) => [type, { ...t }]))
  return run
}

/**
 * Flags async handlers still running `ms` after delivery (`stats().slowHandlers`). It does not
 * cancel them: a handler that must stop takes a signal from `signalFor`.
 */
export function timeout (ms: number): Middleware {
  checkDuration(ms, 'ms', 'argument')
  let context: MiddlewareContext | undefined
  const watching = new Set<unknown>()

  return named('timeout', (event, next) => {
    next()
    if (event.pending == null) {
      return
    }
    const ctx = context ?? unattached()
    for (const pending of event.pending) {
      const timer = ctx.setTimer(() => {
        watching.delete(timer)
        ctx.reportSlowHandler(event, ms)
      }, ms)
      watching.add(timer)
      const settle = (): void => {
        if (watching.delete(timer)) {
          ctx.clearTimer(timer)
        }
      }
      pending.then(settle, settle)
    }
  }, c => { context = c }, () => {
    for (const timer of watching) {
      context?.clearTimer(timer)
    }
    watching.clear()
  })
}

export type Validator<K extends HoldfastEventType> = (detail: HoldfastEvents[K]) => boolean

/** One validator per event type; `'*'` applies to every type (after the type's own). */
export type Schemas = { [K in HoldfastEventType]?: Validator<K> } & { '*'?(detail: unknown): boolean }

/** Drops events whose detail fails its schema (a throwing validator counts as a failure). */
export function validation (schemas: Schemas): Middleware {
  if (schemas == null || typeof schemas !== 'object') {
    throw new InvalidArgumentError('schemas must be an object of validators', 'schemas')
  }
  for (const [type, validator] of Object.entries(schemas)) {
    if (type !== '*' && !isHoldfastEventType(type)) {
      throw new InvalidArgumentError(`no event type "${type}" to validate`, 'schemas')
    }
    if (typeof validator !== 'function') {
      throw new InvalidArgumentError(`the validator of "${type}" is not a function`, 'schemas')
    }
  }
  let context: MiddlewareContext | undefined
  const byType = schemas as Record<string, ((detail: unknown) => boolean) | undefined>

  return named('validation', (event, next) => {
    if (passes(byType[event.type], event.detail) && passes(byType['*'], event.detail)) {
      next()
      return
    }
    const log = (context ?? unattached()).log
    log('dropped malformed %s event', event.type)
  }, c => { context = c })
}

function passes (validator: ((detail: unknown) => boolean) | undefined, detail: unknown): boolean {
  if (validator == null) {
    return true
  }
  try {
    return validator(detail) === true
  } catch {
    return false
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => value != null && typeof value === 'object'
const isString = (value: unknown): boolean => typeof value === 'string' && value.length > 0
const isPath = (value: unknown): boolean => value === 'direct' || value === 'relayed'

/** Schemas of the broadcaster's own events, and a `'*'` rule: every detail is an object whose `peer`, if present, is a PeerId. */
export const coreSchemas: Schemas = {
  '*': detail => isObject(detail) && (!('peer' in detail) || isPeerId(detail.peer)),
  'connection:state': d => isString(d.connectionId) && ['open', 'closing', 'closed'].includes(d.state) &&
    ['inbound', 'outbound'].includes(d.direction) && isPath(d.path),
  'connection:closed': d => isString(d.connectionId) && isPath(d.path),
  'connection:replaced': d => isString(d.oldConnectionId) && isString(d.newConnectionId),
  'peer:gone': d => isString(d.reason),
  'peer:ready': d => Array.isArray(d.conditions),
  'peer:cleaned': d => isString(d.reason) && isObject(d.report),
  'restart:completed': d => typeof d.success === 'boolean'
}

export interface RateLimitOptions {
  /** one budget per event type instead of one for all. Default false */
  byType?: boolean
  /** events allowed in a burst, at least 1. Default `perSecond`, or 1 when that is less */
  burst?: number
  /** types never limited */
  exempt?: HoldfastEventType[]
}

/** Token bucket: passes at most `perSecond` events per second (on the broadcaster's clock), drops the rest. */
export function rateLimit (perSecond: number, opts: RateLimitOptions = {}): Middleware {
  if (typeof perSecond !== 'number' || !Number.isFinite(perSecond) || perSecond <= 0) {
    throw new InvalidArgumentError(`perSecond must be a finite number above 0, got ${String(perSecond)}`, 'perSecond')
  }
  // an event needs a whole token: a bucket that holds less than one would never pass anything
  const burst = checkNumber(opts.burst ?? Math.max(1, perSecond), 'burst', 'argument', 1)
  const exempt = new Set(opts.exempt ?? [])
  const buckets = new Map<string, { tokens: number, last: number }>()
  let context: MiddlewareContext | undefined

  return named('rateLimit', (event, next) => {
    if (exempt.has(event.type)) {
      next()
      return
    }
    const now = (context ?? unattached()).clock.now()
    const key = opts.byType === true ? event.type : '*'
    let bucket = buckets.get(key)
    if (bucket == null) {
      bucket = { tokens: burst, last: now }
      buckets.set(key, bucket)
    }
    bucket.tokens = Math.min(burst, bucket.tokens + (now - bucket.last) * perSecond / 1000)
    bucket.last = now
    if (bucket.tokens >= 1) {
      bucket.tokens--
      next()
    }
  }, c => { context = c }, () => { buckets.clear() })
}

/** The default dedup key: the type and the detail, with peer IDs as strings. */
export function defaultDedupKey (event: HoldfastEvent): string {
  return event.type + JSON.stringify(event.detail)
}

/**
 * Drops an event whose key was seen less than `windowMs` ago (the window starts at the first
 * occurrence, so a steady repeat passes once per window). Keys expire lazily: no timers.
 */
export function dedup (windowMs: number, key: (event: HoldfastEvent) => string = defaultDedupKey): Middleware {
  checkDuration(windowMs, 'windowMs', 'argument')
  if (typeof key !== 'function') {
    throw new InvalidArgumentError('key must be a function', 'key')
  }
  /** insertion-ordered by first-seen time, so expired keys are always at the front */
  const seen = new Map<string, number>()
  let context: MiddlewareContext | undefined

  return named('dedup', (event, next) => {
    const now = (context ?? unattached()).clock.now()
    for (const [k, first] of seen) {
      if (now - first < windowMs) {
        break
      }
      seen.delete(k)
    }
    let k: string
    try {
      k = key(event)
    } catch {
      next() // no key, no duplicate
      return
    }
    if (seen.has(k)) {
      return
    }
    seen.set(k, now)
    next()
  }, c => { context = c }, () => { seen.clear() })
}

/** `recovery`, `logging`, `metrics`: isolation and visibility, nothing dropped. */
export function defaultChain (): Middleware[] {
  return [recovery(), logging(), metrics()]
}

/**
 * The default chain plus `timeout(5 s)` and `validation(coreSchemas)`. `rateLimit` and
 * `dedup` are left out on purpose: which events an app may lose is its own decision.
 */
export function productionChain (): Middleware[] {
  return [...defaultChain(), timeout(PRODUCTION_HANDLER_BUDGET_MS), validation(coreSchemas)]
}
