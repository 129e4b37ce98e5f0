/**
 * The service: its lifecycle, the node events it follows, its events, and the parts it
 * composes: the peer table, the tags, the trimmer, the per-direction limits and the idle sweep.
 */

import { CAPABILITIES, checkPeerId, CLEANUP_ORDER, emit, EventListeners, findService, registerService, TrackedTimers } from '@holdfast/interface'
import { serviceCapabilities } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import { configOf, withLimits } from './config.ts'
import { IdleSweep } from './idle.ts'
import { DirectionLimits } from './limits.ts'
import { PeerTable, setStoreTags } from './peer-table.ts'
import { Tags } from './tags.ts'
import { Trimmer } from './trimmer.ts'
import type { Config } from './config.ts'
import type { ConnectionManagerEvents, WatermarkConnectionManagerComponents, WatermarkConnectionManagerInit } from './index.ts'
import type { ConnEntry, PeerEntry } from './peer-table.ts'
import type { Settings } from './policy.ts'
import type { Announcer } from './trimmer.ts'
import type { BumpFn, CleanupBroadcaster, CloseReason, ConnManagerStats, DecayFn, DecayingTag, InternalSizes, Limits, PeerConnInfo, TrimPlan, TrimReport, WatermarkConnectionManager as WatermarkConnectionManagerInterface } from '@holdfast/interface'
import type { AbortOptions, Connection, CounterGroup, Libp2pEvents, Logger, PeerId, Startable } from '@libp2p/interface'

/** the manager's layer in the cleanup broadcaster's chain */
const CLEANUP_LAYER = 'connection-manager'

export class WatermarkConnectionManager extends TypedEventEmitter<ConnectionManagerEvents> implements WatermarkConnectionManagerInterface, Startable {
  readonly [Symbol.toStringTag] = '@holdfast/connection-manager'
  readonly [serviceCapabilities]: string[] = [CAPABILITIES.connectionManager]

  private readonly components: WatermarkConnectionManagerComponents
  private readonly log: Logger
  private readonly config: Config
  private settings: Settings
  private readonly timers: TrackedTimers
  private readonly table: PeerTable
  private readonly tags: Tags
  private readonly trimmer: Trimmer
  private readonly limits: DirectionLimits
  private readonly idle: IdleSweep
  private readonly closedBy: Record<CloseReason, number> = { trim: 0, idle: 0, limit: 0 }
  private readonly closedMetric?: CounterGroup
  private broadcaster: CleanupBroadcaster | undefined
  private removeCleanupLayer: (() => void) | undefined
  private readonly nodeEvents: EventListeners<Libp2pEvents>
  private started = false

  private readonly announcer: Announcer = {
    emit: (type, detail) => { emit(this, this.broadcaster, this.log, type, detail) },
    announces: (type) => this.broadcaster != null || this.listenerCount(type) > 0,
    closed: (reason, connections) => {
      this.closedBy[reason] += connections
      this.closedMetric?.increment({ [reason]: connections })
    }
  }

  constructor (components: WatermarkConnectionManagerComponents, init: WatermarkConnectionManagerInit = {}) {
    super()
    this.components = components
    this.log = components.logger.forComponent('holdfast:connection-manager')
    this.config = configOf(init)
    this.settings = this.config.settings
    const { clock, score } = this.config
    const { log, announcer } = this
    const isStarted = (): boolean => this.started
    const settings = (): Settings => this.settings
    const close = this.closeOne

    const metrics = components.metrics
    this.closedMetric = metrics?.registerCounterGroup('holdfast_connection_manager_closed_total', { label: 'reason', help: 'Connections the manager closed, by reason (trim, idle, limit)' })
    const refusedMetric = metrics?.registerCounterGroup('holdfast_connection_manager_refused_total', { label: 'direction', help: 'Connections refused by maxInbound / maxOutbound' })
    const trimsMetric = metrics?.registerCounter('holdfast_connection_manager_trims_total', { help: 'Trims run, automatic and manual' })

    this.timers = new TrackedTimers(clock)
    const { timers } = this
    const table = this.table = new PeerTable(components.peerStore)
    const tags = this.tags = new Tags({ table, peerStore: components.peerStore, clock, log, isStarted, unprotected: () => { this.trimmer.maybeAutoTrim() } })
    this.trimmer = new Trimmer({ table, tags, clock, timers, log, score, settings, isStarted, announcer, trimsMetric })
    this.limits = new DirectionLimits({ host: components, table, tags, log, settings, announcer, close, refusedMetric })
    this.idle = new IdleSweep({ table, clock, timers, settings, isStarted, close })

    metrics?.registerMetricGroup('holdfast_connection_manager_connections', {
      label: 'kind',
      help: 'Connections and peers tracked by the manager',
      calculate: () => ({ inbound: table.inbound, outbound: table.outbound, peers: table.connected, protected_peers: tags.protectedPeers })
    })
    this.nodeEvents = new EventListeners<Libp2pEvents>(components.events, {
      'connection:open': this.onConnectionOpen,
      'connection:close': this.onConnectionClose,
      'peer:update': this.onPeerUpdate
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
    this.limits.install()
    this.broadcaster = findService<CleanupBroadcaster>(this.components, CAPABILITIES.cleanupBroadcaster)
    this.removeCleanupLayer = this.broadcaster?.onCleanup(CLEANUP_LAYER, CLEANUP_ORDER.connectionManager, this.forgetPeer)
    for (const connection of this.components.connectionManager.getConnections()) {
      this.track(connection)
    }
    void this.tags.mirrorAll(true)
    const builtInMax = this.components.connectionManager.getMaxConnections()
    if (builtInMax <= this.settings.highWater) {
      this.log('libp2p maxConnections (%d) is not above highWater (%d): libp2p\'s own pruner will trim before this manager does; see the README', builtInMax, this.settings.highWater)
    }
    this.trimmer.maybeAutoTrim()
  }

  async stop (): Promise<void> {
    if (!this.started) {
      return
    }
    this.started = false
    this.nodeEvents.remove()
    this.limits.remove()
    this.removeCleanupLayer?.()
    this.removeCleanupLayer = undefined
    this.broadcaster = undefined
    this.idle.stop()
    await this.tags.mirrorAll(false)
    await this.trimmer.stop()
    // the node closes the connections; we keep no record of them
    this.table.clear()
  }

  // ---------------------------------------------------------------- protection and tags

  protect (peer: PeerId, tag: string): void {
    this.tags.protect(peer, tag)
  }

  unprotect (peer: PeerId, tag: string): boolean {
    return this.tags.unprotect(peer, tag)
  }

  isProtected (peer: PeerId, tag?: string): boolean {
    return this.tags.isProtected(peer, tag)
  }

  tagPeer (peer: PeerId, tag: string, value: number): void {
    this.tags.tagPeer(peer, tag, value)
  }

  untagPeer (peer: PeerId, tag: string): void {
    this.tags.untagPeer(peer, tag)
  }

  upsertTag (peer: PeerId, tag: string, update: (old: number) => number): void {
    this.tags.upsertTag(peer, tag, update)
  }

  registerDecayingTag (name: string, interval: number, decay: DecayFn, bump: BumpFn): DecayingTag {
    return this.tags.registerDecayingTag(name, interval, decay, bump)
  }

  // ---------------------------------------------------------------- trimming and limits

  async trim (opts?: AbortOptions): Promise<TrimReport> {
    return this.trimmer.trim(opts)
  }

  explainTrim (): TrimPlan {
    return this.trimmer.explain()
  }

  setLimits (limits: Partial<Limits>): void {
    const next = withLimits(this.config, this.settings, limits)
    const idleChanged = next.idleTimeout !== this.settings.idleTimeout
    this.settings = next
    if (idleChanged) {
      this.idle.restart()
    }
    this.trimmer.restart()
  }

  // ---------------------------------------------------------------- the peers

  private readonly onConnectionOpen = (evt: Libp2pEvents['connection:open']): void => {
    try {
      const connection = evt.detail
      if (connection.status !== 'open') {
        return
      }
      const entry = this.track(connection)
      if (entry != null && !this.limits.admit(entry, connection)) {
        return
      }
      this.trimmer.maybeAutoTrim()
    } catch (err) {
      this.log.error('connection:open handler failed - %e', err)
    }
  }

  /**
   * Every connection is counted out as it closes: a peer often keeps others open, and its
   * cleanup, which runs once per peer, cannot keep the watermarks and limits right. Its entry
   * goes with the last one only on a node without a cleanup broadcaster, or when the peer's
   * cleanup has already run (a `cleanup()` closes the connections after its layers, and no
   * other cleanup comes); otherwise `forgetPeer` drops it, in the cleanup's order.
   */
  private readonly onConnectionClose = (evt: Libp2pEvents['connection:close']): void => {
    try {
      const entry = this.table.untrack(evt.detail)
      if (entry == null) {
        return
      }
      if (entry.conns.length === 0 && (this.removeCleanupLayer === undefined || entry.cleaned)) {
        this.table.delete(entry)
      }
      this.connectionsGone()
    } catch (err) {
      this.log.error('connection:close handler failed - %e', err)
    }
  }

  /**
   * The manager's layer of a peer's cleanup, the last of the chain: the layers above it still
   * find the peer's tags through `info()`. A peer that is gone loses its entry here; one still
   * connected keeps it, since its connections still count, until its last one closes.
   */
  private readonly forgetPeer = (peer: PeerId): void => {
    const entry = this.table.get(peer)
    if (entry == null) {
      return
    }
    this.table.releaseClosed(entry)
    if (entry.conns.length === 0) {
      this.table.delete(entry)
    } else {
      entry.cleaned = true
    }
    this.connectionsGone()
  }

  private readonly onPeerUpdate = (evt: Libp2pEvents['peer:update']): void => {
    const entry = this.table.get(evt.detail.peer.id)
    if (entry != null) {
      setStoreTags(entry, evt.detail.peer)
    }
  }

  /** Records an open connection; returns its peer entry, or undefined if it was known already */
  private track (connection: Connection): PeerEntry | undefined {
    const entry = this.table.track(connection, this.config.clock.now(), key => this.tags.hasProtection(key))
    if (entry != null) {
      this.idle.arm()
    }
    return entry
  }

  private connectionsGone (): void {
    if (this.table.connected === 0) {
      this.idle.stop()
    }
    this.trimmer.connectionsGone()
  }

  /** Closes one connection for `reason`, and says so */
  private readonly closeOne = (entry: PeerEntry, conn: ConnEntry, reason: CloseReason): void => {
    this.table.closeConnection(entry, conn, noop, this.log)
    this.announcer.closed(reason, 1)
    this.announcer.emit('connection:closed-by-manager', { peer: entry.peer, reason })
  }

  // ---------------------------------------------------------------- introspection

  info (peer: PeerId): PeerConnInfo | undefined {
    checkPeerId(peer)
    const entry = this.table.get(peer)
    return entry == null ? undefined : this.tags.describe(entry, this.config.clock.now(), this.settings.gracePeriod, this.config.score)
  }

  stats (): ConnManagerStats {
    const { table } = this
    return {
      connections: table.connections,
      peers: table.connected,
      inbound: table.inbound,
      outbound: table.outbound,
      protectedPeers: this.tags.protectedPeers,
      trims: this.trimmer.trims,
      lastTrim: this.trimmer.lastTrim,
      closed: { ...this.closedBy },
      refused: { ...this.limits.refused }
    }
  }

  internalSizes (): InternalSizes {
    let connections = 0
    let decayingValues = 0
    for (const entry of this.table.values()) {
      connections += entry.conns.length
      decayingValues += entry.decaying?.size ?? 0
    }
    return {
      peers: this.table.size,
      connections,
      closing: this.table.closing,
      decayingValues,
      timers: this.timers.size,
      listeners: 0,
      nodeListeners: this.nodeEvents.size,
      gater: this.limits.installed ? 1 : 0,
      cleanupLayer: this.removeCleanupLayer === undefined ? 0 : 1,
      storeWrites: this.tags.storeWrites,
      protected: this.tags.protectedPeers,
      decayingTags: this.tags.registered
    }
  }
}

function noop (): void {}
