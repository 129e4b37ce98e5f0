import { CAPABILITIES, checkPeerId, EventListeners, registerService, TrackedTimers } from '@holdfast/interface'
import { isPeerId, serviceCapabilities } from '@libp2p/interface'
import { CleanupChain } from './cleanup.ts'
import { configOf } from './config.ts'
import { EventStream } from './event-stream.ts'
import { PeerTable } from './peers.ts'
import { Pending } from './pending.ts'
import { cleanupTrigger, replacementVictim } from './policy.ts'
import { Readiness } from './readiness.ts'
import type { CleanupBroadcasterComponents, CleanupBroadcasterInit } from './index.ts'
import type { PeerEntry } from './peers.ts'
import type { AnyEventHandler, BroadcasterStats, CleanupBroadcaster as CleanupBroadcasterInterface, CleanupLayer, CleanupReason, CleanupReport, Clock, EventHandler, HoldfastEvents, HoldfastEventType, InternalSizes, Middleware, MiddlewareContext, PathKind, SubscribeOptions, TrackOptions, WhenReadyOptions } from '@holdfast/interface'
import type { AbortOptions, Connection, IdentifyResult, Libp2pEvents, Logger, PeerId, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const pathOf = (connection: Connection): PathKind => connection.direct === false ? 'relayed' : 'direct'

/**
 * The service: wires libp2p's connection events to the peer table, and composes the event
 * stream, the pending work, readiness and the cleanup chain, each in its own file.
 */
export class CleanupBroadcaster implements CleanupBroadcasterInterface, Startable {
  readonly [Symbol.toStringTag] = '@holdfast/cleanup-broadcaster'
  readonly [serviceCapabilities]: string[] = [CAPABILITIES.cleanupBroadcaster]

  private readonly components: CleanupBroadcasterComponents
  private readonly log: Logger
  private readonly clock: Clock
  private readonly replaceConnections: boolean
  private readonly timers: TrackedTimers
  private readonly stream: EventStream
  private readonly peers = new PeerTable()
  private readonly work: Pending
  private readonly readiness: Readiness
  private readonly cleanups: CleanupChain
  /** why we closed a connection, for its `connection:closed` event (the reason never reaches libp2p) */
  private readonly closeReasons = new WeakMap<Connection, string>()
  private readonly nodeEvents: EventListeners<Libp2pEvents>
  private started = false

  constructor (components: CleanupBroadcasterComponents, init: CleanupBroadcasterInit = {}) {
    const config = configOf(init)
    this.components = components
    this.log = components.logger.forComponent('holdfast:cleanup-broadcaster')
    this.clock = config.clock
    this.timers = new TrackedTimers(this.clock)
    this.replaceConnections = config.replaceConnections

    this.stream = new EventStream(this.middlewareContext())
    for (const m of config.middleware) {
      this.stream.use(m)
    }
    const publish = this.publish.bind(this)
    const closeConnection = this.closeConnection.bind(this)
    this.work = new Pending({ peers: this.peers, timers: this.timers, connectionManager: components.connectionManager, closeConnection })
    this.readiness = new Readiness({ peers: this.peers, timers: this.timers, log: this.log, publish }, config.readyConditions)
    this.cleanups = new CleanupChain({
      peers: this.peers,
      pending: this.work,
      readiness: this.readiness,
      clock: this.clock,
      timers: this.timers,
      log: this.log,
      metrics: components.metrics,
      connectionManager: components.connectionManager,
      closingWindowMs: config.closingWindowMs,
      publish,
      closeConnection,
      isStarted: () => this.started
    })
    this.nodeEvents = new EventListeners<Libp2pEvents>(components.events, {
      'connection:open': this.onConnectionOpen,
      'connection:close': this.onConnectionClose,
      'peer:disconnect': this.onPeerDisconnect,
      'peer:identify': this.onPeerIdentify
    }, this.log)
    registerService(components, this)
  }

  // ---------------------------------------------------------------- lifecycle

  start (): void {
    if (this.started) {
      return
    }
    this.started = true
    this.nodeEvents.add()
    for (const connection of this.components.connectionManager.getConnections()) {
      this.connectionOpened(connection)
    }
  }

  async stop (): Promise<void> {
    if (!this.started) {
      return
    }
    this.started = false
    this.nodeEvents.remove()

    await Promise.all([...this.peers.values()].map(async entry => this.cleanups.run(entry, 'shutdown', false)))
    for (const entry of this.peers.values()) {
      this.cleanups.endClosing(entry)
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
      this.runCleanup(this.peers.entryFor(peer), reason)
    }
  }

  use (middleware: Middleware): void {
    this.stream.use(middleware)
  }

  stats (): BroadcasterStats {
    return this.stream.stats()
  }

  // ---------------------------------------------------------------- work bound to a peer

  track<T>(target: PeerId | Connection, work: (signal: AbortSignal) => Promise<T>, opts?: TrackOptions): Promise<T> {
    return this.work.track(target, work, opts)
  }

  signalFor (target: PeerId | Connection): AbortSignal {
    return this.work.signalFor(target)
  }

  async dial (target: PeerId | Multiaddr | Multiaddr[], opts?: AbortOptions): Promise<Connection> {
    return this.work.dial(target, opts)
  }

  isClosing (peer: PeerId): boolean {
    return this.peers.get(checkPeerId(peer))?.closing === true
  }

  pending (peer?: PeerId): number {
    return this.work.count(peer)
  }

  // ---------------------------------------------------------------- the cleanup chain

  onCleanup (layer: string, order: number, fn: CleanupLayer): () => void {
    return this.cleanups.onCleanup(layer, order, fn)
  }

  async cleanup (peer: PeerId, reason: CleanupReason): Promise<CleanupReport> {
    return this.cleanups.cleanup(peer, reason)
  }

  async closeAll (reason: CleanupReason): Promise<CleanupReport[]> {
    return this.cleanups.closeAll(reason)
  }

  // ---------------------------------------------------------------- readiness

  setReadyConditions (conditions: string[]): void {
    this.readiness.setConditions(conditions)
  }

  markReady (peer: PeerId, condition: string): void {
    this.readiness.mark(peer, condition)
  }

  async whenReady (peer: PeerId, opts?: WhenReadyOptions): Promise<void> {
    return this.readiness.whenReady(peer, opts)
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
      pending: this.work.count(),
      waiters,
      controllers,
      closing,
      timers: this.timers.size,
      listeners: this.work.listeners + this.readiness.listeners + this.stream.listenerCount(),
      nodeListeners: this.nodeEvents.size
    }
  }

  // ---------------------------------------------------------------- libp2p events

  private readonly onConnectionOpen = (event: CustomEvent<Connection>): void => {
    this.connectionOpened(event.detail)
  }

  private readonly onConnectionClose = (event: CustomEvent<Connection>): void => {
    this.connectionClosed(event.detail)
  }

  private readonly onPeerDisconnect = (event: CustomEvent<PeerId>): void => {
    const entry = this.peers.get(event.detail)
    if (entry != null) {
      this.peerGone(entry)
    }
  }

  private readonly onPeerIdentify = (event: CustomEvent<IdentifyResult>): void => {
    this.readiness.mark(event.detail.peerId, 'identified')
  }

  private connectionOpened (connection: Connection): void {
    const entry = this.peers.entryFor(connection.remotePeer)
    if (entry.connections.some(c => c.connection.id === connection.id) || connection.status !== 'open') {
      this.peers.release(entry)
      return
    }
    entry.connections = [...entry.connections, { connection, controller: undefined, work: undefined }]
    entry.gone = false
    this.publish('connection:state', { peer: connection.remotePeer, connectionId: connection.id, state: 'open', direction: connection.direction, path: pathOf(connection) })
    if (this.replaceConnections) {
      this.replaceOlder(entry, connection)
    }
    this.readiness.evaluate(entry)
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
      this.work.abortConnection(entry, loser, 'connection-replaced')
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

    const entry = this.peers.get(peer)
    if (entry == null) {
      return
    }
    this.work.abortConnection(entry, connection, reason ?? 'connection-closed')
    entry.connections = entry.connections.filter(c => c.connection.id !== connection.id)
    if (entry.connections.length === 0) {
      this.peerGone(entry)
    }
    // libp2p may report the disconnect (and we clean up) before this close: the entry can go now
    this.peers.release(entry)
  }

  /** The last connection closed (or libp2p said the peer disconnected): full cleanup, once */
  private peerGone (entry: PeerEntry): void {
    if (entry.gone) {
      return
    }
    entry.gone = true
    const reason: CleanupReason = 'peer-disconnected'
    this.publish('peer:gone', { peer: entry.peer, reason })
    this.runCleanup(entry, reason)
  }

  /** A cleanup the service triggered itself: it leaves the connections to whoever closes them */
  private runCleanup (entry: PeerEntry, reason: CleanupReason): void {
    this.cleanups.run(entry, reason, false).catch(err => { this.log.error('cleanup of %p failed - %e', entry.peer, err) })
  }

  private async closeConnection (connection: Connection, reason: string): Promise<void> {
    if (connection.status !== 'open') {
      return
    }
    this.closeReasons.set(connection, reason)
    this.publish('connection:state', { peer: connection.remotePeer, connectionId: connection.id, state: 'closing', direction: connection.direction, path: pathOf(connection) })
    await connection.close().catch(err => { connection.abort(err) })
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
