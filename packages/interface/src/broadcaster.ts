/**
 * The contract of `@holdfast/cleanup-broadcaster`, here so other services can depend on the
 * shape without importing the implementation.
 */

import type { Clock } from './clock.ts'
import type { AnyHoldfastEvent, CleanupReason, CleanupReport, HoldfastEvent, HoldfastEvents, HoldfastEventType } from './events.ts'
import type { AbortOptions, Connection, Logger, Metrics, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export type EventHandler<K extends HoldfastEventType> = (event: HoldfastEvent<K>) => void | Promise<void>

/** A `'*'` subscriber sees every event, discriminated by `type` */
export type AnyEventHandler = (event: AnyHoldfastEvent) => void | Promise<void>

/**
 * An event on its way through the middleware chain. Handlers see it as a read-only
 * `HoldfastEvent`; middleware also see what delivery produced.
 */
export interface Delivery<K extends HoldfastEventType = HoldfastEventType> extends HoldfastEvent<K> {
  /** set once the chain reached the handlers */
  delivered: boolean
  /** synchronous throws of handlers, collected so the other handlers still run */
  errors?: unknown[]
  /** promises returned by async handlers */
  pending?: Array<Promise<unknown>>
}

/** What a middleware gets from the broadcaster it is added to */
export interface MiddlewareContext {
  log: Logger
  clock: Clock
  metrics?: Metrics
  /** count and log a handler's throw or rejection (`stats().handlerErrors`) */
  reportHandlerError(error: unknown, event: HoldfastEvent): void
  /** count and log an async handler that outlived its budget (`stats().slowHandlers`) */
  reportSlowHandler(event: HoldfastEvent, budgetMs: number): void
  /** start a timer the broadcaster accounts for (and clears on stop) */
  setTimer(fn: () => void, ms: number): unknown
  clearTimer(handle: unknown): void
}

/**
 * `(event, next) => void`. Call `next()` synchronously to pass the event on; return without
 * calling it to drop the event (counted in `stats().dropped` under `middlewareName`).
 */
export interface Middleware {
  (event: Delivery, next: () => void): void
  /** shown in stats and logs */
  middlewareName?: string
  /** called once by `use()` */
  attach?(context: MiddlewareContext): void
  /** called when the broadcaster stops: release timers and state */
  detach?(): void
}

export interface BroadcasterStats {
  /** events published (dropped ones included) */
  totalEvents: number
  byType: Partial<Record<HoldfastEventType, number>>
  /** current subscriptions */
  activeHandlers: number
  /** events a middleware did not pass on */
  dropped: number
  droppedBy: Record<string, number>
  /** handler throws and rejections caught by `recovery()` */
  handlerErrors: number
  /** async handlers flagged by `timeout()` */
  slowHandlers: number
}

/**
 * What a service holds right now. Every holdfast service exposes this so tests can assert
 * that after a scenario everything is back to zero.
 */
export interface InternalSizes {
  /** per-peer entries */
  peers: number
  /** timers started by the service and not yet fired or cleared */
  timers: number
  /** listeners the service added to signals and event targets it does not own */
  listeners: number
  [what: string]: number
}

export interface Introspectable {
  internalSizes(): InternalSizes
}

export interface SubscribeOptions {
  /** aborting it unsubscribes */
  signal?: AbortSignal
}

export interface TrackOptions extends AbortOptions {
  /** ms, above 0 and below 2^31; the work rejects with `TimeoutError` and its signal aborts */
  timeout?: number
}

export interface WhenReadyOptions extends AbortOptions {
  /** ms, above 0 and below 2^31; the wait rejects with `TimeoutError` */
  timeout?: number
}

export type CleanupLayer = (peer: PeerId, reason: CleanupReason) => void | Promise<void>

export interface CleanupBroadcaster extends Introspectable {
  // one event stream
  subscribe<K extends HoldfastEventType>(type: K, handler: EventHandler<K>, opts?: SubscribeOptions): () => void
  subscribe(type: '*', handler: AnyEventHandler, opts?: SubscribeOptions): () => void
  publish<K extends HoldfastEventType>(type: K, detail: HoldfastEvents[K]): void
  use(middleware: Middleware): void
  stats(): BroadcasterStats

  // work bound to a peer or one connection

  /**
   * Runs `work` bound to the peer (or to one of its open connections): it rejects with
   * `ConnectionClosedError` the moment the peer (or that connection) goes, and `work`'s signal
   * aborts. A peer that is not connected is accepted (the work may open the connection); its
   * work then ends when it settles, at its `timeout`, when its `signal` aborts or when the peer
   * is cleaned up. A peer that is closing rejects with `PeerClosingError`.
   */
  track<T>(target: PeerId | Connection, work: (signal: AbortSignal) => Promise<T>, opts?: TrackOptions): Promise<T>

  /**
   * A signal that aborts when the peer (or that connection) goes. Live only while the peer has
   * an open connection or work in flight: otherwise it is aborted already, as nothing would
   * ever abort it, and a signal handed out while work was in flight for a peer with no
   * connection aborts when the last of that work settles.
   */
  signalFor(target: PeerId | Connection): AbortSignal

  /** `connectionManager.openConnection`, cancelled by a cleanup of the peer before, during or right after the dial */
  dial(peer: PeerId | Multiaddr | Multiaddr[], opts?: AbortOptions): Promise<Connection>

  /** Whether a cleanup of the peer is running or its closing window is open */
  isClosing(peer: PeerId): boolean

  /** Tracked promises and dials in flight for the peer (its connections included), or for every peer */
  pending(peer?: PeerId): number

  // the cleanup chain
  onCleanup(layer: string, order: number, fn: CleanupLayer): () => void
  cleanup(peer: PeerId, reason: CleanupReason): Promise<CleanupReport>
  closeAll(reason: CleanupReason): Promise<CleanupReport[]>

  // readiness instead of sleeps
  setReadyConditions(conditions: string[]): void
  /** Marks a condition for a connected peer; a peer that is not connected is ignored */
  markReady(peer: PeerId, condition: string): void
  /**
   * Resolves once the peer has a connection and every ready condition. A peer that is not
   * connected yet is waited for; the wait rejects when the peer is cleaned up, at its
   * `timeout` or when its `signal` aborts.
   */
  whenReady(peer: PeerId, opts?: WhenReadyOptions): Promise<void>
}
