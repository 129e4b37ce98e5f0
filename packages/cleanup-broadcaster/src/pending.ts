/**
 * Work bound to a peer or to one of its connections: `track`ed promises, `dial`s and the
 * signals of `signalFor`. Each peer entry and each connection entry owns a set of pending work
 * and an abort controller; a cleanup drains the set and aborts the controller.
 */

import { AbortError, ConnectionClosedError, InvalidArgumentError, PeerClosingError, TimeoutError, checkDuration, checkOptions, checkPeerId } from '@holdfast/interface'
import { isConnection, isPeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { isMultiaddr } from '@multiformats/multiaddr'
import { anySignal } from 'any-signal'
import { setMaxListeners } from 'main-event'
import type { PeerEntry, PeerTable } from './peers.ts'
import type { TrackedTimers, TrackOptions } from '@holdfast/interface'
import type { AbortOptions, Connection, PeerId } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Work in flight that a cleanup must reject at once: a `track`ed promise or a `dial` */
export interface PendingWork {
  readonly kind: 'track' | 'dial'
  reject(error: Error): void
}

/** Work and a signal bound to one peer or one connection */
export interface WorkOwner {
  controller?: AbortController
  work?: Set<PendingWork>
}

export interface ConnectionEntry extends WorkOwner {
  readonly connection: Connection
}

export interface PendingDeps {
  readonly peers: PeerTable
  readonly timers: TrackedTimers
  readonly connectionManager: ConnectionManager
  /** closes a connection this service opened or replaced, with the reason its event reports */
  closeConnection(connection: Connection, reason: string): Promise<void>
}

interface BoundSignal {
  readonly signal: AbortSignal
  /** called once if the caller's signal or the timeout aborts first */
  onCallerAbort(fn: () => void): void
  /** detaches from the inputs; `cancelledBy` (a cleanup's error) aborts the signal first, so the work's I/O stops too */
  release(cancelledBy?: Error): void
}

interface WorkHandle<T> {
  readonly promise: Promise<T>
  /** settles once; later calls are ignored */
  settle(error?: Error, value?: T): void
  isSettled(): boolean
}

export class Pending {
  /** listeners added to callers' signals (through any-signal), until their work settles */
  listeners = 0
  private readonly deps: PendingDeps

  constructor (deps: PendingDeps) {
    this.deps = deps
  }

  track<T>(target: PeerId | Connection, work: (signal: AbortSignal) => Promise<T>, options?: TrackOptions): Promise<T> {
    // not an async method: the promise handed out is the one a cleanup rejects, so a
    // caller's handler runs in the first microtask after the trigger, not several hops later
    try {
      return this.startTracking(target, work, options)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  private startTracking<T>(target: PeerId | Connection, work: (signal: AbortSignal) => Promise<T>, options?: TrackOptions): Promise<T> {
    const { connection, peer, signal, ms } = trackArguments(target, work, options)
    const known = this.deps.peers.get(peer)
    if (known?.closing === true) {
      throw new PeerClosingError(`Peer ${peer} is closing`, peer)
    }
    const connectionEntry = connection == null ? undefined : known?.connections.find(c => c.connection.id === connection.id)
    if (connection != null && connectionEntry == null) {
      throw new ConnectionClosedError(`Connection ${connection.id} is not open`, peer)
    }
    // a peer with no connection gets an entry that lives exactly as long as this work
    const entry = known ?? this.deps.peers.entryFor(peer)
    const owner: WorkOwner = connectionEntry ?? entry

    const timeoutController = ms === undefined ? undefined : new AbortController()
    const bound = this.workSignal(owner, signal, timeoutController?.signal)
    let timer: unknown
    const pending = addWork<T>(owner, 'track', (cancelledBy) => {
      if (timer !== undefined) {
        this.deps.timers.clear(timer)
      }
      bound.release(cancelledBy)
      this.deps.peers.release(entry)
    })
    const settle = pending.settle

    // the owner's own abort rejects the record directly (cleanup); only a caller's signal or
    // the timeout needs a listener
    bound.onCallerAbort(() => {
      settle(signal?.aborted === true ? new AbortError() : asError(bound.signal.reason))
    })
    if (timeoutController != null && ms !== undefined) {
      timer = this.deps.timers.set(() => {
        timer = undefined
        timeoutController.abort(new TimeoutError(`Work bound to ${peer} timed out after ${ms} ms`))
      }, ms)
    }

    try {
      Promise.resolve(work(bound.signal)).then(value => { settle(undefined, value) }, error => { settle(asError(error)) })
    } catch (error) {
      settle(asError(error))
    }
    return pending.promise
  }

  signalFor (target: PeerId | Connection): AbortSignal {
    const connection = isConnection(target) ? target : undefined
    const peer = connection?.remotePeer ?? checkPeerId(target, 'target')
    const entry = this.deps.peers.get(peer)
    const owner = connection == null ? entry : entry?.connections.find(c => c.connection.id === connection.id)
    // a peer with nothing open and nothing in flight has no live signal: nothing would ever abort it
    if (entry == null || owner == null || entry.closing || (owner === entry && entry.connections.length === 0 && (entry.work?.size ?? 0) === 0)) {
      return AbortSignal.abort(notConnected(peer))
    }
    return ownSignal(owner)
  }

  async dial (target: PeerId | Multiaddr | Multiaddr[], options?: AbortOptions): Promise<Connection> {
    const peer = dialedPeer(target)
    const opts = checkOptions(options)
    if (opts.signal?.aborted === true) {
      throw new AbortError()
    }
    // checkpoint 1: before dialing
    if (peer != null && this.deps.peers.get(peer)?.closing === true) {
      throw new PeerClosingError(`Peer ${peer} is closing`, peer)
    }
    const entry = peer == null ? undefined : this.deps.peers.entryFor(peer)
    const openBefore = new Set(entry?.connections.map(c => c.connection.id))
    const bound = entry == null ? undefined : this.workSignal(entry, opts.signal)
    const signal = bound == null ? opts.signal : bound.signal
    const pending = addWork<Connection>(entry, 'dial', (cancelledBy) => {
      bound?.release(cancelledBy)
      if (entry != null) {
        this.deps.peers.release(entry)
      }
    })
    const settle = pending.settle

    // checkpoint 2: while dialing, the peer's signal is combined with the caller's
    this.deps.connectionManager.openConnection(target, { ...opts, signal }).then(connection => {
      // checkpoint 3: the connection opened, but the dial was cancelled meanwhile
      const cancelled = pending.isSettled() || signal?.aborted === true || this.deps.peers.get(connection.remotePeer)?.closing === true
      if (cancelled && !openBefore.has(connection.id)) {
        this.deps.closeConnection(connection, 'dial-cancelled').catch(() => {})
      }
      if (cancelled) {
        settle(opts.signal?.aborted === true ? new AbortError() : new ConnectionClosedError(`Dial to ${connection.remotePeer} was cancelled by a cleanup`, connection.remotePeer))
        return
      }
      settle(undefined, connection)
    }, (error: Error) => {
      if (opts.signal?.aborted === true) {
        settle(new AbortError())
      } else if (signal?.aborted === true) {
        settle(asError(signal.reason))
      } else {
        settle(error)
      }
    })
    return pending.promise
  }

  /** Work in flight for one peer (its connections' included), or for all */
  count (peer?: PeerId): number {
    if (peer !== undefined) {
      const entry = this.deps.peers.get(checkPeerId(peer))
      return entry == null ? 0 : countWork(entry)
    }
    let total = 0
    for (const entry of this.deps.peers.values()) {
      total += countWork(entry)
    }
    return total
  }

  /** Rejects the work bound to one connection and forgets the connection's signal */
  abortConnection (entry: PeerEntry, connection: Connection, reason: string): void {
    const owner = entry.connections.find(c => c.connection.id === connection.id)
    if (owner == null) {
      return
    }
    const error = new ConnectionClosedError(`Connection ${connection.id} to ${entry.peer} closed (${reason})`, entry.peer, reason)
    for (const work of drain(owner)) {
      work.reject(error)
    }
    abortOwner(owner, error)
  }

  /** Rejects everything in flight for the peer and its connections, and aborts their signals */
  rejectAll (entry: PeerEntry, error: Error): { pendingRejected: number, dialsAborted: number } {
    let pendingRejected = 0
    let dialsAborted = 0
    for (const owner of [entry, ...entry.connections]) {
      for (const work of drain(owner)) {
        if (work.kind === 'dial') {
          dialsAborted++
        } else {
          pendingRejected++
        }
        work.reject(error)
      }
      abortOwner(owner, error)
    }
    return { pendingRejected, dialsAborted }
  }

  /**
   * The owner's signal, combined with the caller's and a timeout's only when there are any
   * (any-signal, whose listeners on the inputs are counted until `release`).
   */
  private workSignal (owner: WorkOwner, ...others: Array<AbortSignal | undefined>): BoundSignal {
    const own = ownSignal(owner)
    const inputs = [own, ...others.filter(s => s != null)]
    if (inputs.length === 1) {
      return { signal: own, onCallerAbort: () => {}, release: () => {} }
    }
    // a cleanup settles the work before it aborts the owner's signal: this input lets it abort
    // the combined signal itself before the combination is taken apart
    const cancel = new AbortController()
    const combined = anySignal([...inputs, cancel.signal])
    // the work may hand it to every request it makes
    setMaxListeners(Infinity, combined)
    this.listeners += inputs.length
    let onAbort: (() => void) | undefined
    const detach = (): void => {
      combined.clear()
      this.listeners -= inputs.length
    }
    return {
      signal: combined,
      onCallerAbort: (fn) => {
        onAbort = fn
        combined.addEventListener('abort', fn, { once: true })
      },
      release: (cancelledBy) => {
        if (onAbort !== undefined) {
          combined.removeEventListener('abort', onAbort)
        }
        if (cancelledBy == null) {
          detach()
          return
        }
        // as the owner's abort: after the rejections reached their callers
        queueMicrotask(() => {
          cancel.abort(cancelledBy)
          detach()
        })
      }
    }
  }
}

interface TrackArguments {
  /** set when the work is bound to one connection */
  connection?: Connection
  peer: PeerId
  signal?: AbortSignal
  ms?: number
}

/** `track`'s arguments, checked before anything is created */
function trackArguments (target: unknown, work: unknown, options: TrackOptions | undefined): TrackArguments {
  const connection = isConnection(target) ? target : undefined
  const peer = connection?.remotePeer ?? checkPeerId(target, 'target')
  if (typeof work !== 'function') {
    throw new InvalidArgumentError('work must be a function', 'work')
  }
  const opts = checkOptions(options)
  const ms = opts.timeout === undefined ? undefined : checkDuration(opts.timeout, 'timeout', 'argument')
  if (opts.signal?.aborted === true) {
    throw new AbortError()
  }
  return { connection, peer, signal: opts.signal, ms }
}

/** The error a peer's signal aborts with when the peer has no connection and nothing in flight */
export function notConnected (peer: PeerId): ConnectionClosedError {
  return new ConnectionClosedError(`Peer ${peer} is not connected`, peer, 'not-connected')
}

/** Work in flight for a peer and its connections */
export function countWork (entry: WorkOwner & { readonly connections: readonly ConnectionEntry[] }): number {
  let count = entry.work?.size ?? 0
  for (const c of entry.connections) {
    count += c.work?.size ?? 0
  }
  return count
}

/**
 * The owner's signal, made on first use. It lives as long as the peer or the connection and
 * gets one abort listener per request that uses it: many listeners are expected, none is a leak.
 */
function ownSignal (owner: WorkOwner): AbortSignal {
  if (owner.controller == null) {
    owner.controller = new AbortController()
    setMaxListeners(Infinity, owner.controller.signal)
  }
  return owner.controller.signal
}

/**
 * Registers pending work on its owner (a peer, one connection, or nothing for a dial whose
 * peer is not known yet) so a cleanup can reject it; settling it takes it off and runs `done`.
 */
function addWork<T> (owner: WorkOwner | undefined, kind: PendingWork['kind'], done: (cancelledBy?: Error) => void): WorkHandle<T> {
  const { promise, resolve, reject } = Promise.withResolvers<T>()
  let settled = false
  // a cleanup's rejection also cancels the work itself
  const record: PendingWork = { kind, reject: (error) => { settle(error, undefined, true) } }
  const settle = (error?: Error, value?: T, cancelled = false): void => {
    if (settled) {
      return
    }
    settled = true
    owner?.work?.delete(record)
    // settle the caller's promise first: an abort that `done` queues reaches the work after the caller
    if (error != null) {
      reject(error)
    } else {
      resolve(value as T)
    }
    done(cancelled ? error : undefined)
  }
  if (owner != null) {
    (owner.work ??= new Set()).add(record)
  }
  return { promise, settle, isSettled: () => settled }
}

/**
 * Aborts the owner's signal one microtask later: the rejections queued just before reach
 * their callers first, and the work's own abort listeners (often one per request) run after.
 * New `signalFor` calls already get an aborted signal, since the controller is dropped now.
 */
export function abortOwner (owner: WorkOwner, error: Error): void {
  const controller = owner.controller
  owner.controller = undefined
  if (controller != null) {
    queueMicrotask(() => { controller.abort(error) })
  }
}

/** Empties an owner's work set and returns what was in it */
function drain (owner: WorkOwner): PendingWork[] {
  const work = [...(owner.work ?? [])]
  owner.work = undefined
  return work
}

export function asError (value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value))
}

/** The peer a dial target names, if any (a multiaddr without /p2p/ names none) */
function dialedPeer (target: PeerId | Multiaddr | Multiaddr[]): PeerId | undefined {
  if (isPeerId(target)) {
    return target
  }
  const addrs = Array.isArray(target) ? target : [target]
  if (addrs.length === 0 || !addrs.every(isMultiaddr)) {
    throw new InvalidArgumentError('target must be a PeerId, a Multiaddr or a non-empty array of Multiaddrs', 'target')
  }
  const ids = new Set(addrs.map(addr => addr.getComponents().findLast(c => c.name === 'p2p')?.value))
  if (ids.size !== 1) {
    return undefined
  }
  const [id] = ids
  return id === undefined ? undefined : peerIdFromString(id)
}
