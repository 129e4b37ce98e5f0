/**
 * Readiness instead of sleeps: the conditions a peer needs, the marks it has, and the
 * `whenReady` waiters that resolve once it has them all.
 */

import { AbortError, ConnectionClosedError, InvalidArgumentError, InvalidConfigError, TimeoutError, checkDuration, checkOptions, checkPeerId } from '@holdfast/interface'
import { isReady } from './policy.ts'
import type { PeerEntry, PeerTable } from './peers.ts'
import type { CleanupBroadcaster, InputKind, TrackedTimers, WhenReadyOptions } from '@holdfast/interface'
import type { Logger, PeerId } from '@libp2p/interface'

/** The condition the broadcaster marks itself: true while the peer has a connection */
export const CONNECTED = 'connected'

export interface ReadyWaiter {
  resolve(): void
  reject(error: Error): void
}

export interface ReadinessDeps {
  readonly peers: PeerTable
  readonly timers: TrackedTimers
  readonly log: Logger
  readonly publish: CleanupBroadcaster['publish']
}

export class Readiness {
  /** listeners added to callers' signals, until their wait ends */
  listeners = 0
  private conditions: readonly string[]
  private readonly deps: ReadinessDeps

  constructor (deps: ReadinessDeps, conditions: readonly string[]) {
    this.deps = deps
    this.conditions = conditions
  }

  setConditions (conditions: string[]): void {
    this.conditions = checkConditions(conditions, 'conditions', 'argument')
    for (const entry of this.deps.peers.values()) {
      this.evaluate(entry)
    }
  }

  mark (peer: PeerId, condition: string): void {
    checkPeerId(peer)
    if (typeof condition !== 'string' || condition.length === 0) {
      throw new InvalidArgumentError('condition must be a non-empty string', 'condition')
    }
    const entry = this.deps.peers.get(peer)
    // a cleanup resets readiness synchronously, so a mark arriving during it or in the closing
    // window belongs to a new connection and counts
    if (entry == null || entry.connections.length === 0) {
      this.deps.log.trace('ignoring %s for %p: not connected', condition, peer)
      return
    }
    if (condition !== CONNECTED && !(entry.marked?.includes(condition) ?? false)) {
      entry.marked = [...(entry.marked ?? []), condition]
    }
    this.evaluate(entry)
  }

  async whenReady (peer: PeerId, options?: WhenReadyOptions): Promise<void> {
    checkPeerId(peer)
    const opts = checkOptions(options)
    const ms = opts.timeout === undefined ? undefined : checkDuration(opts.timeout, 'timeout', 'argument')
    if (opts.signal?.aborted === true) {
      throw new AbortError()
    }
    const existing = this.deps.peers.get(peer)
    if (existing?.ready === true) {
      return
    }
    if (existing?.closing === true) {
      throw new ConnectionClosedError(`Peer ${peer} is closing`, peer)
    }
    // a peer that is not connected yet gets an entry that lives exactly as long as the wait
    const entry = existing ?? this.deps.peers.entryFor(peer)
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    let timer: unknown
    const signal = opts.signal
    const waiter: ReadyWaiter = {
      resolve: () => { done() },
      reject: (error) => { done(error) }
    }
    const onAbort = (): void => { done(new AbortError()) }
    const done = (error?: Error): void => {
      if (!(entry.waiters?.delete(waiter) ?? false)) {
        return
      }
      if (timer !== undefined) {
        this.deps.timers.clear(timer)
      }
      if (signal != null) {
        signal.removeEventListener('abort', onAbort)
        this.listeners--
      }
      this.deps.peers.release(entry)
      if (error != null) {
        reject(error)
      } else {
        resolve()
      }
    }
    (entry.waiters ??= new Set()).add(waiter)
    if (signal != null) {
      signal.addEventListener('abort', onAbort, { once: true })
      this.listeners++
    }
    if (ms !== undefined) {
      timer = this.deps.timers.set(() => {
        timer = undefined
        done(new TimeoutError(`${peer} was not ready within ${ms} ms`))
      }, ms)
    }
    return promise
  }

  /** Marks the peer ready, resolves its waiters and publishes `peer:ready` once it has every condition */
  evaluate (entry: PeerEntry): void {
    if (entry.ready || entry.connections.length === 0 || !isReady(this.conditions, entry.marked, CONNECTED)) {
      return
    }
    entry.ready = true
    for (const waiter of [...(entry.waiters ?? [])]) {
      waiter.resolve()
    }
    this.deps.publish('peer:ready', { peer: entry.peer, conditions: [...this.conditions] })
  }

  /** The peer is being cleaned up: its marks are forgotten and its waiters rejected */
  reset (entry: PeerEntry, error: Error): void {
    entry.ready = false
    entry.marked = undefined
    for (const waiter of [...(entry.waiters ?? [])]) {
      waiter.reject(error)
    }
  }
}

/** A non-empty list of non-empty condition names, without repeats */
export function checkConditions (value: unknown, name: string, kind: InputKind): readonly string[] {
  if (!Array.isArray(value) || value.length === 0 || value.some(c => typeof c !== 'string' || c.length === 0)) {
    const message = `${name} must be a non-empty array of non-empty strings`
    throw kind === 'config' ? new InvalidConfigError(message, name) : new InvalidArgumentError(message, name)
  }
  return Object.freeze([...new Set(value as string[])])
}
