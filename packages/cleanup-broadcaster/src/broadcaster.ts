import { AbortError, CAPABILITIES, ConnectionClosedError, InvalidArgumentError, InvalidConfigError, PeerClosingError, registerService, systemClock, TimeoutError, TrackedTimers } from '@holdfast/interface'
import { isConnection, isPeerId, serviceCapabilities } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { isMultiaddr } from '@multiformats/multiaddr'
import { anySignal } from 'any-signal'
import { CLOSING_WINDOW_MS, READY_CONDITIONS, REPLACE_CONNECTIONS } from './constants.ts'
import { EventStream } from './event-stream.ts'
import { recovery } from './middleware.ts'
import { cleanupTrigger, isReady, isValidDuration, isValidWindow, replacementVictim } from './policy.ts'
import type { CleanupBroadcasterComponents, CleanupBroadcasterInit } from './index.ts'
import type { AnyEventHandler, BroadcasterStats, CleanupBroadcaster as CleanupBroadcasterInterface, CleanupLayer, CleanupReason, CleanupReport, Clock, EventHandler, HoldfastEvents, HoldfastEventType, InternalSizes, LayerReport, Middleware, MiddlewareContext, PathKind, SubscribeOptions, TrackOptions, WhenReadyOptions } from '@holdfast/interface'
import type { AbortOptions, Connection, Counter, CounterGroup, IdentifyResult, Logger, PeerId, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Work in flight that a cleanup must reject at once: a `track`ed promise or a `dial` */
interface PendingWork {
  readonly kind: 'track' | 'dial'
  reject(error: Error): void
}

/** Work and a signal bound to one peer or one connection */
interface WorkOwner {
  controller?: AbortController
  work?: Set<PendingWork>
}

interface ConnectionEntry extends WorkOwner {
  readonly connection: Connection
}

interface BoundSignal {
  readonly signal: AbortSignal
  /** called once if the caller's signal or the timeout aborts first */
  onCallerAbort(fn: () => void): void
  release(): void
}

interface ReadyWaiter {
  resolve(): void
  reject(error: Error): void
}

/**
 * One per peer with connections, work or waiters. Kept small (spec 01: < 512 bytes per
 * connected peer): every field is set in the literal so V8 keeps them in-object, arrays are
 * replaced rather than grown, and `connected` is implied by `connections` instead of stored.
 */
interface PeerEntry extends WorkOwner {
  readonly peer: PeerId
  /** replaced, never pushed to, so the backing store is exactly as long as needed */
  connections: readonly ConnectionEntry[]
  /** readiness conditions marked since the peer connected, other than `connected` */
  marked?: readonly string[]
  ready: boolean
  waiters?: Set<ReadyWaiter>
  /** new work fails fast with PeerClosingError */
  closing: boolean
  closingTimer?: unknown
  /** the running cleanup, so concurrent triggers share one */
  cleaning?: Promise<CleanupReport>
  /** a trigger that arrived during the cleanup asked for the connections to be closed */
  closeRequested: boolean
  /** `peer:gone` was published for the current disconnect */
  gone: boolean
}

interface Layer {
  readonly layer: string
  readonly order: number
  readonly fn: CleanupLayer
}

/** The condition the broadcaster marks itself: true while the peer has a connection */
const CONNECTED = 'connected'

const pathOf = (connection: Connection): PathKind => connection.direct === false ? 'relayed' : 'direct'

export class CleanupBroadcaster implements CleanupBroadcasterInterface, Startable {
  readonly [Symbol.toStringTag] = '@holdfast/cleanup-broadcaster'
  readonly [serviceCapabilities]: string[] = [CAPABILITIES.cleanupBroadcaster]

  private readonly components: CleanupBroadcasterComponents
  private readonly log: Logger
  private readonly clock: Clock
  private readonly closingWindowMs: number
  private readonly replaceConnections: boolean
  private readonly stream: EventStream
  private readonly peers = new Map<string, PeerEntry>()
  private layers: Layer[] = []
  private readyConditions: readonly string[]
  private readonly timers: TrackedTimers
  /** listeners this service added to signals it does not own */
  private signalListeners = 0
  private nodeListeners = 0
  /** why we closed a connection, for its `connection:closed` event (the reason never reaches libp2p) */
  private readonly closeReasons = new WeakMap<Connection, string>()
  private readonly metrics?: { cleanups: CounterGroup, rejected: Counter, dialsAborted: Counter }
  private started = false

  constructor (components: CleanupBroadcasterComponents, init: CleanupBroadcasterInit = {}) {
    this.components = components
    this.log = components.logger.forComponent('holdfast:cleanup-broadcaster')
    this.clock = init.clock ?? systemClock
    this.timers = new TrackedTimers(this.clock)
    this.closingWindowMs = init.closingWindowMs ?? CLOSING_WINDOW_MS
    this.replaceConnections = init.replaceConnections ?? REPLACE_CONNECTIONS
    if (!isValidWindow(this.closingWindowMs)) {
      throw new InvalidConfigError(`closingWindowMs must be a non-negative finite number, got ${String(this.closingWindowMs)}`, 'closingWindowMs')
    }
    const middleware = init.middleware ?? [recovery()]
    if (!Array.isArray(middleware) || middleware.some(m => typeof m !== 'function')) {
      throw new InvalidConfigError('middleware must be an array of middleware functions', 'middleware')
    }
    this.readyConditions = checkConditions(init.readyConditions ?? READY_CONDITIONS, InvalidConfigError, 'readyConditions')

    this.stream = new EventStream(this.middlewareContext())
    // recovery is always present: without it one throwing handler would starve the others
    if (!middleware.some(m => m.middlewareName === 'recovery')) {
      this.stream.use(recovery())
    }
    for (const m of middleware) {
      this.stream.use(m)
    }

    if (components.metrics != null) {
      this.metrics = {
        cleanups: components.metrics.registerCounterGroup('holdfast_cleanup_broadcaster_cleanups_total', { label: 'reason', help: 'Full peer cleanups, by reason' }),
        rejected: components.metrics.registerCounter('holdfast_cleanup_broadcaster_pending_rejected_total', { help: 'Tracked promises rejected by a cleanup' }),
        dialsAborted: components.metrics.registerCounter('holdfast_cleanup_broadcaster_dials_aborted_total', { help: 'Dials aborted by a cleanup' })
      }
    }
    registerService(components, this)
  }

  // ---------------------------------------------------------------- lifecycle

  start (): void {
    if (this.started) {
      return
    }
    this.started = true
    const events = this.components.events
    events.addEventListener('connection:open', this.onConnectionOpen)
    events.addEventListener('connection:close', this.onConnectionClose)
    events.addEventListener('peer:disconnect', this.onPeerDisconnect)
    events.addEventListener('peer:identify', this.onPeerIdentify)
    this.nodeListeners = 4
    // connections opened before we started
    for (const connection of this.components.connectionManager.getConnections()) {
      this.connectionOpened(connection)
    }
  }

  async stop (): Promise<void> {
    if (!this.started) {
      return
    }
    this.started = false
    const events = this.components.events
    events.removeEventListener('connection:open', this.onConnectionOpen)
    events.removeEventListener('connection:close', this.onConnectionClose)
    events.removeEventListener('peer:disconnect', this.onPeerDisconnect)
    events.removeEventListener('peer:identify', this.onPeerIdentify)
    this.nodeListeners = 0

    await Promise.all([...this.peers.values()].map(async entry => this.runCleanup(entry, 'shutdown', false)))
    for (const entry of this.peers.values()) {
      this.endClosing(entry)
    }
    // the node is stopping: libp2p closes the connections, we keep no record of them
    this.peers.clear()
    this.timers.clearAll()
    this.stream.clear()
  }

  // ---------------------------------------------------------------- the event stream

  subscribe<K extends HoldfastEventType>(type: K, handler: EventHandler<K>, opts?: SubscribeOptions): () => void
  subscribe (type: '*', handler: AnyEventHandler, opts?: SubscribeOptions): () => void
  subscribe<K extends HoldfastEventType>(type: K | '*', handler: EventHandler<K> | AnyEventHandler, opts?: SubscribeOptions): () => void {
    return this.stream.subscribe(type, handler, opts)
  }

  publish<K extends HoldfastEventType>(type: K, detail: HoldfastEvents[K]): void {
    this.stream.publish(type, detail)
    // triggers act on the raw event, not on what the middleware let through: a rate limit
    // or a subscriber must never be able to stop a cleanup
    const reason = cleanupTrigger(type, detail)
    const peer = (detail as { peer?: unknown }).peer
    if (reason !== undefined && isPeerId(peer)) {
      this.runCleanup(this.entryFor(peer), reason, false).catch(err => { this.log.error('cleanup of %p failed - %e', peer, err) })
    }
  }

  use (middleware: Middleware): void {
    this.stream.use(middleware)
  }

  stats (): BroadcasterStats {
    return this.stream.stats()
  }

  // ---------------------------------------------------------------- work bound to a peer

  track<T>(target: PeerId | Connection, work: (signal: AbortSignal) => Promise<T>, opts: TrackOptions = {}): Promise<T> {
    // not an async method: the promise handed out is the one a cleanup rejects, so a
    // caller's handler runs in the first microtask after the trigger, not several hops later
    try {
      return this.startTracking(target, work, opts)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  private startTracking<T>(target: PeerId | Connection, work: (signal: AbortSignal) => Promise<T>, opts: TrackOptions): Promise<T> {
    if (!isPeerId(target) && !isConnection(target)) {
      throw new InvalidArgumentError('target must be a PeerId or a Connection', 'target')
    }
    if (typeof work !== 'function') {
      throw new InvalidArgumentError('work must be a function', 'work')
    }
    if (opts.timeout !== undefined && !isValidDuration(opts.timeout)) {
      throw new InvalidArgumentError(`timeout must be a positive finite number, got ${String(opts.timeout)}`, 'timeout')
    }
    if (opts.signal?.aborted === true) {
      throw new AbortError()
    }
    const peer = isPeerId(target) ? target : target.remotePeer
    if (this.isClosing(peer)) {
      throw new PeerClosingError(`Peer ${peer} is closing`, peer)
    }
    const entry = this.entryFor(peer)
    const owner = isPeerId(target) ? entry : entry.connections.find(c => c.connection.id === target.id)
    if (owner === undefined) {
      this.release(entry)
      throw new ConnectionClosedError(`Connection ${(target as Connection).id} is not open`, peer)
    }

    const timeoutController = opts.timeout === undefined ? undefined : new AbortController()
    const bound = this.workSignal(owner, opts.signal, timeoutController?.signal)
    let timer: unknown
    const pending = addWork<T>(owner, 'track', () => {
      if (timer !== undefined) {
        this.timers.clear(timer)
      }
      bound.release()
      this.release(entry)
    })
    const settle = pending.settle

    // the owner's own abort rejects the record directly (cleanup); only a caller's signal or
    // the timeout needs a listener
    bound.onCallerAbort(() => {
      settle(opts.signal?.aborted === true ? new AbortError() : asError(bound.signal.reason))
    })
    if (timeoutController != null && opts.timeout !== undefined) {
      const ms = opts.timeout
      timer = this.timers.set(() => {
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
    if (!isPeerId(target) && !isConnection(target)) {
      throw new InvalidArgumentError('target must be a PeerId or a Connection', 'target')
    }
    const peer = isPeerId(target) ? target : target.remotePeer
    const entry = this.peers.get(peer.toString())
    const owner = isPeerId(target) ? entry : entry?.connections.find(c => c.connection.id === target.id)
    // a peer with nothing open and nothing in flight has no live signal: its work would be bound to nothing
    if (entry == null || owner == null || entry.closing || (owner === entry && entry.connections.length === 0 && (entry.work?.size ?? 0) === 0)) {
      return AbortSignal.abort(new ConnectionClosedError(`Peer ${peer} is not connected`, peer))
    }
    return (owner.controller ??= new AbortController()).signal
  }

  async dial (target: PeerId | Multiaddr | Multiaddr[], opts: AbortOptions = {}): Promise<Connection> {
    const peer = dialedPeer(target)
    if (opts.signal?.aborted === true) {
      throw new AbortError()
    }
    // checkpoint 1: before dialing
    if (peer != null && this.isClosing(peer)) {
      throw new PeerClosingError(`Peer ${peer} is closing`, peer)
    }
    const entry = peer == null ? undefined : this.entryFor(peer)
    const openBefore = new Set(entry?.connections.map(c => c.connection.id))
    const bound = entry == null ? undefined : this.workSignal(entry, opts.signal)
    const signal = bound == null ? opts.signal : bound.signal
    const pending = addWork<Connection>(entry, 'dial', () => {
      bound?.release()
      if (entry != null) {
        this.release(entry)
      }
    })
    const settle = pending.settle

    // checkpoint 2: while dialing, the peer's signal is combined with the caller's
    this.components.connectionManager.openConnection(target, { ...opts, signal }).then(connection => {
      // checkpoint 3: the connection opened, but the dial was cancelled meanwhile
      const cancelled = pending.isSettled() || signal?.aborted === true || this.isClosing(connection.remotePeer)
      if (cancelled && !openBefore.has(connection.id)) {
        this.closeConnection(connection, 'dial-cancelled')
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

  isClosing (peer: PeerId): boolean {
    return this.peers.get(peer.toString())?.closing === true
  }

  pending (peer?: PeerId): number {
    if (peer != null) {
      const entry = this.peers.get(peer.toString())
      return entry == null ? 0 : countWork(entry)
    }
    let total = 0
    for (const entry of this.peers.values()) {
      total += countWork(entry)
    }
    return total
  }

  // ---------------------------------------------------------------- the cleanup chain

  onCleanup (layer: string, order: number, fn: CleanupLayer): () => void {
    if (typeof layer !== 'string' || layer.length === 0) {
      throw new InvalidArgumentError('layer must be a non-empty string', 'layer')
    }
    if (typeof order !== 'number' || !Number.isFinite(order)) {
      throw new InvalidArgumentError(`order must be a finite number, got ${String(order)}`, 'order')
    }
    if (typeof fn !== 'function') {
      throw new InvalidArgumentError('fn must be a function', 'fn')
    }
    const entry: Layer = { layer, order, fn }
    // stable: layers of equal order run in registration order
    this.layers = [...this.layers, entry].sort((a, b) => a.order - b.order)
    return () => {
      this.layers = this.layers.filter(l => l !== entry)
    }
  }

  async cleanup (peer: PeerId, reason: CleanupReason): Promise<CleanupReport> {
    if (!isPeerId(peer)) {
      throw new InvalidArgumentError('peer must be a PeerId', 'peer')
    }
    if (typeof reason !== 'string' || reason.length === 0) {
      throw new InvalidArgumentError('reason must be a CleanupReason', 'reason')
    }
    return this.runCleanup(this.entryFor(peer), reason, true)
  }

  async closeAll (reason: CleanupReason): Promise<CleanupReport[]> {
    if (typeof reason !== 'string' || reason.length === 0) {
      throw new InvalidArgumentError('reason must be a CleanupReason', 'reason')
    }
    const peers = new Map<string, PeerId>()
    for (const entry of this.peers.values()) {
      peers.set(entry.peer.toString(), entry.peer)
    }
    for (const connection of this.components.connectionManager.getConnections()) {
      peers.set(connection.remotePeer.toString(), connection.remotePeer)
    }
    return Promise.all([...peers.values()].map(async peer => this.runCleanup(this.entryFor(peer), reason, true)))
  }

  /**
   * Full cleanup of a peer, in the spec's order. Steps 1 and 2 run synchronously, so every
   * pending promise of the peer is rejected in the tick of the trigger.
   */
  private async runCleanup (entry: PeerEntry, reason: CleanupReason, closeConnections: boolean): Promise<CleanupReport> {
    if (closeConnections) {
      entry.closeRequested = true
    }
    if (entry.cleaning != null) {
      return entry.cleaning
    }
    const start = this.clock.now()
    const { peer } = entry

    // 1. mark closing: new track/dial fail at once
    this.startClosing(entry)
    // 2. reject everything in flight and abort the peer's signals
    const error = new ConnectionClosedError(`Connection to ${peer} closed (${reason})`, peer, reason)
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
      abortAfterRejections(owner, error)
    }
    this.resetReadiness(entry, error)
    this.metrics?.cleanups.increment({ [reason]: true })
    this.metrics?.rejected.increment(pendingRejected)
    this.metrics?.dialsAborted.increment(dialsAborted)

    // set before the rest runs: with no async layer it finishes synchronously, and must find
    // (and clear) its own mark rather than leave a settled promise behind for the next cleanup
    const { promise, resolve, reject } = Promise.withResolvers<CleanupReport>()
    entry.cleaning = promise
    this.finishCleanup(entry, reason, { start, pendingRejected, dialsAborted }).then(resolve, (err: Error) => {
      entry.cleaning = undefined
      this.endClosing(entry)
      reject(err)
    })
    return promise
  }

  /** Steps 3 to 6: the layers top-down, closing connections, the report, the closing window */
  private async finishCleanup (entry: PeerEntry, reason: CleanupReason, counts: { start: number, pendingRejected: number, dialsAborted: number }): Promise<CleanupReport> {
    const { peer } = entry
    const layers: LayerReport[] = []
    for (const { layer, fn } of this.layers) {
      const layerStart = this.clock.now()
      try {
        await fn(peer, reason)
        layers.push({ layer, ok: true, ms: this.clock.now() - layerStart })
      } catch (err) {
        this.log.error('cleanup layer %s failed for %p - %e', layer, peer, err)
        layers.push({ layer, ok: false, ms: this.clock.now() - layerStart, error: asError(err).message })
      }
    }

    let connectionsClosed = 0
    if (entry.closeRequested) {
      const connections = this.components.connectionManager.getConnections(peer)
      connectionsClosed = connections.length
      await Promise.all(connections.map(async connection => this.closeConnection(connection, reason)))
    }

    const report: CleanupReport = {
      peer,
      reason,
      pendingRejected: counts.pendingRejected,
      dialsAborted: counts.dialsAborted,
      connectionsClosed,
      layers,
      durationMs: this.clock.now() - counts.start
    }
    entry.cleaning = undefined
    entry.closeRequested = false
    this.publish('peer:cleaned', { peer, reason, report })

    // 6. the closing mark outlives the cleanup by closingWindowMs
    if (this.closingWindowMs > 0 && this.started) {
      entry.closingTimer = this.timers.set(() => {
        entry.closingTimer = undefined
        this.endClosing(entry)
      }, this.closingWindowMs)
    } else {
      this.endClosing(entry)
    }
    return report
  }

  private startClosing (entry: PeerEntry): void {
    entry.closing = true
    if (entry.closingTimer !== undefined) {
      this.timers.clear(entry.closingTimer)
      entry.closingTimer = undefined
    }
  }

  private endClosing (entry: PeerEntry): void {
    if (entry.cleaning != null) {
      return // the running cleanup ends it
    }
    if (entry.closingTimer !== undefined) {
      this.timers.clear(entry.closingTimer)
      entry.closingTimer = undefined
    }
    entry.closing = false
    this.release(entry)
  }

  // ---------------------------------------------------------------- readiness

  setReadyConditions (conditions: string[]): void {
    this.readyConditions = checkConditions(conditions, InvalidArgumentError, 'conditions')
    for (const entry of this.peers.values()) {
      this.evaluateReadiness(entry)
    }
  }

  markReady (peer: PeerId, condition: string): void {
    if (!isPeerId(peer)) {
      throw new InvalidArgumentError('peer must be a PeerId', 'peer')
    }
    if (typeof condition !== 'string' || condition.length === 0) {
      throw new InvalidArgumentError('condition must be a non-empty string', 'condition')
    }
    const entry = this.peers.get(peer.toString())
    // a cleanup resets readiness synchronously, so a mark arriving during it or in the closing
    // window belongs to a new connection and counts
    if (entry == null || entry.connections.length === 0) {
      this.log.trace('ignoring %s for %p: not connected', condition, peer)
      return
    }
    if (condition !== CONNECTED && !(entry.marked?.includes(condition) ?? false)) {
      entry.marked = [...(entry.marked ?? []), condition]
    }
    this.evaluateReadiness(entry)
  }

  async whenReady (peer: PeerId, opts: WhenReadyOptions = {}): Promise<void> {
    if (!isPeerId(peer)) {
      throw new InvalidArgumentError('peer must be a PeerId', 'peer')
    }
    if (opts.timeout !== undefined && !isValidDuration(opts.timeout)) {
      throw new InvalidArgumentError(`timeout must be a positive finite number, got ${String(opts.timeout)}`, 'timeout')
    }
    if (opts.signal?.aborted === true) {
      throw new AbortError()
    }
    const existing = this.peers.get(peer.toString())
    if (existing?.ready === true) {
      return
    }
    if (existing?.closing === true) {
      throw new ConnectionClosedError(`Peer ${peer} is closing`, peer)
    }
    const entry = existing ?? this.entryFor(peer)
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
        this.timers.clear(timer)
      }
      if (signal != null) {
        signal.removeEventListener('abort', onAbort)
        this.signalListeners--
      }
      this.release(entry)
      if (error != null) {
        reject(error)
      } else {
        resolve()
      }
    }
    (entry.waiters ??= new Set()).add(waiter)
    if (signal != null) {
      signal.addEventListener('abort', onAbort, { once: true })
      this.signalListeners++
    }
    if (opts.timeout !== undefined) {
      const ms = opts.timeout
      timer = this.timers.set(() => {
        timer = undefined
        done(new TimeoutError(`${peer} was not ready within ${ms} ms`))
      }, ms)
    }
    return promise
  }

  private evaluateReadiness (entry: PeerEntry): void {
    if (entry.ready || entry.connections.length === 0 || !isReady(this.readyConditions, entry.marked, CONNECTED)) {
      return
    }
    entry.ready = true
    for (const waiter of [...(entry.waiters ?? [])]) {
      waiter.resolve()
    }
    this.publish('peer:ready', { peer: entry.peer, conditions: [...this.readyConditions] })
  }

  private resetReadiness (entry: PeerEntry, error: Error): void {
    entry.ready = false
    entry.marked = undefined
    for (const waiter of [...(entry.waiters ?? [])]) {
      waiter.reject(error)
    }
  }

  // ---------------------------------------------------------------- introspection

  internalSizes (): InternalSizes {
    let connections = 0
    let waiters = 0
    let controllers = 0
    let closing = 0
    for (const entry of this.peers.values()) {
      connections += entry.connections.length
      waiters += entry.waiters?.size ?? 0
      controllers += (entry.controller == null ? 0 : 1) + entry.connections.filter(c => c.controller != null).length
      closing += entry.closing ? 1 : 0
    }
    return {
      peers: this.peers.size,
      connections,
      pending: this.pending(),
      waiters,
      controllers,
      closing,
      timers: this.timers.size,
      listeners: this.signalListeners + this.stream.listenerCount(),
      nodeListeners: this.nodeListeners
    }
  }

  // ---------------------------------------------------------------- libp2p events

  private readonly onConnectionOpen = (event: CustomEvent<Connection>): void => {
    this.guard('connection:open', () => { this.connectionOpened(event.detail) })
  }

  private readonly onConnectionClose = (event: CustomEvent<Connection>): void => {
    this.guard('connection:close', () => { this.connectionClosed(event.detail) })
  }

  private readonly onPeerDisconnect = (event: CustomEvent<PeerId>): void => {
    this.guard('peer:disconnect', () => {
      const entry = this.peers.get(event.detail.toString())
      if (entry != null) {
        this.peerGone(entry)
      }
    })
  }

  private readonly onPeerIdentify = (event: CustomEvent<IdentifyResult>): void => {
    this.guard('peer:identify', () => { this.markReady(event.detail.peerId, 'identified') })
  }

  /** a throwing listener would become an uncaughtException in libp2p's event target */
  private guard (what: string, fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.log.error('handling %s failed - %e', what, err)
    }
  }

  private connectionOpened (connection: Connection): void {
    const entry = this.entryFor(connection.remotePeer)
    if (entry.connections.some(c => c.connection.id === connection.id) || connection.status !== 'open') {
      return
    }
    entry.connections = [...entry.connections, { connection, controller: undefined, work: undefined }]
    entry.gone = false
    this.publish('connection:state', { peer: connection.remotePeer, connectionId: connection.id, state: 'open', direction: connection.direction, path: pathOf(connection) })
    if (this.replaceConnections) {
      this.replaceOlder(entry, connection)
    }
    this.evaluateReadiness(entry)
  }

  private replaceOlder (entry: PeerEntry, newer: Connection): void {
    const local = this.components.peerId.toString()
    for (const older of entry.connections) {
      if (older.connection === newer || older.connection.status !== 'open') {
        continue
      }
      const victim = replacementVictim(
        { direction: newer.direction, path: pathOf(newer) },
        { direction: older.connection.direction, path: pathOf(older.connection) },
        local, entry.peer.toString())
      if (victim === 'none') {
        continue
      }
      const [loser, winner] = victim === 'older' ? [older.connection, newer] : [newer, older.connection]
      this.publish('connection:replaced', { peer: entry.peer, oldConnectionId: loser.id, newConnectionId: winner.id })
      this.abortConnectionWork(entry, loser, 'connection-replaced')
      this.closeConnection(loser, 'replaced').catch(() => {})
      if (victim === 'newer') {
        return
      }
    }
  }

  private connectionClosed (connection: Connection): void {
    const path = pathOf(connection)
    const reason = this.closeReasons.get(connection)
    const peer = connection.remotePeer
    this.publish('connection:state', { peer, connectionId: connection.id, state: 'closed', direction: connection.direction, path })
    this.publish('connection:closed', reason === undefined ? { peer, connectionId: connection.id, path } : { peer, connectionId: connection.id, path, reason })

    const entry = this.peers.get(peer.toString())
    if (entry == null) {
      return
    }
    this.abortConnectionWork(entry, connection, reason ?? 'connection-closed')
    entry.connections = entry.connections.filter(c => c.connection.id !== connection.id)
    if (entry.connections.length === 0) {
      this.peerGone(entry)
    }
    // libp2p may report the disconnect (and we clean up) before this close: the entry can go now
    this.release(entry)
  }

  /** Rejects the work bound to one connection and forgets the connection's signal */
  private abortConnectionWork (entry: PeerEntry, connection: Connection, reason: string): void {
    const owner = entry.connections.find(c => c.connection.id === connection.id)
    if (owner == null) {
      return
    }
    const error = new ConnectionClosedError(`Connection ${connection.id} to ${entry.peer} closed (${reason})`, entry.peer, reason)
    for (const work of drain(owner)) {
      work.reject(error)
    }
    abortAfterRejections(owner, error)
  }

  /** The last connection closed (or libp2p said the peer disconnected): full cleanup, once */
  private peerGone (entry: PeerEntry): void {
    if (entry.gone) {
      return
    }
    entry.gone = true
    const reason: CleanupReason = 'peer-disconnected'
    this.publish('peer:gone', { peer: entry.peer, reason })
    this.runCleanup(entry, reason, false).catch(err => { this.log.error('cleanup of %p failed - %e', entry.peer, err) })
  }

  private async closeConnection (connection: Connection, reason: string): Promise<void> {
    if (connection.status !== 'open') {
      return
    }
    this.closeReasons.set(connection, reason)
    this.publish('connection:state', { peer: connection.remotePeer, connectionId: connection.id, state: 'closing', direction: connection.direction, path: pathOf(connection) })
    await connection.close().catch(err => { connection.abort(err) })
  }

  // ---------------------------------------------------------------- entries, signals, timers

  private entryFor (peer: PeerId): PeerEntry {
    const key = peer.toString()
    let entry = this.peers.get(key)
    if (entry == null) {
      entry = {
        peer,
        connections: [],
        marked: undefined,
        ready: false,
        waiters: undefined,
        closing: false,
        closingTimer: undefined,
        cleaning: undefined,
        closeRequested: false,
        gone: false,
        controller: undefined,
        work: undefined
      }
      this.peers.set(key, entry)
    }
    return entry
  }

  /** Drops the entry once nothing refers to the peer any more: no leftovers per peer */
  private release (entry: PeerEntry): void {
    if (!entry.closing && entry.cleaning == null && entry.connections.length === 0 &&
        countWork(entry) === 0 && (entry.waiters?.size ?? 0) === 0) {
      const key = entry.peer.toString()
      if (this.peers.get(key) === entry) {
        this.peers.delete(key)
      }
    }
  }

  /**
   * The owner's signal, combined with the caller's and a timeout's only when there are any
   * (any-signal, whose listeners on the inputs are counted until `release`).
   */
  private workSignal (owner: WorkOwner, ...others: Array<AbortSignal | undefined>): BoundSignal {
    const own = (owner.controller ??= new AbortController()).signal
    const inputs = [own, ...others.filter(s => s != null)]
    if (inputs.length === 1) {
      return { signal: own, onCallerAbort: () => {}, release: () => {} }
    }
    const combined = anySignal(inputs)
    this.signalListeners += inputs.length
    let onAbort: (() => void) | undefined
    return {
      signal: combined,
      onCallerAbort: (fn) => {
        onAbort = fn
        combined.addEventListener('abort', fn, { once: true })
      },
      release: () => {
        if (onAbort !== undefined) {
          combined.removeEventListener('abort', onAbort)
        }
        combined.clear()
        this.signalListeners -= inputs.length
      }
    }
  }

  private middlewareContext (): MiddlewareContext {
    return {
      log: this.log,
      clock: this.clock,
      metrics: this.components.metrics,
      reportHandlerError: (error, event) => {
        this.stream.handlerErrors++
        this.log.error('a %s handler failed - %e', event.type, error)
      },
      reportSlowHandler: (event, budgetMs) => {
        this.stream.slowHandlers++
        this.log('a %s handler is still running after %d ms', event.type, budgetMs)
      },
      setTimer: (fn, ms) => this.timers.set(fn, ms),
      clearTimer: handle => { this.timers.clear(handle) }
    }
  }
}

function countWork (entry: PeerEntry): number {
  let count = entry.work?.size ?? 0
  for (const c of entry.connections) {
    count += c.work?.size ?? 0
  }
  return count
}

interface WorkHandle<T> {
  readonly promise: Promise<T>
  /** settles once; later calls are ignored */
  settle(error?: Error, value?: T): void
  isSettled(): boolean
}

/**
 * Registers pending work on its owner (a peer, one connection, or nothing for a dial whose
 * peer is not known yet) so a cleanup can reject it; settling it takes it off and runs `done`.
 */
function addWork<T> (owner: WorkOwner | undefined, kind: PendingWork['kind'], done: () => void): WorkHandle<T> {
  const { promise, resolve, reject } = Promise.withResolvers<T>()
  let settled = false
  const record: PendingWork = { kind, reject: (error) => { settle(error) } }
  const settle = (error?: Error, value?: T): void => {
    if (settled) {
      return
    }
    settled = true
    owner?.work?.delete(record)
    done()
    if (error != null) {
      reject(error)
    } else {
      resolve(value as T)
    }
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
function abortAfterRejections (owner: WorkOwner, error: Error): void {
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

function asError (value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value))
}

function checkConditions (conditions: unknown, ErrorClass: typeof InvalidArgumentError | typeof InvalidConfigError, name: string): readonly string[] {
  if (!Array.isArray(conditions) || conditions.length === 0 || conditions.some(c => typeof c !== 'string' || c.length === 0)) {
    throw new ErrorClass(`${name} must be a non-empty array of non-empty strings`, name)
  }
  return Object.freeze([...new Set(conditions as string[])])
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
