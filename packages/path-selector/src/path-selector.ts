import { AddressRequiredError, CAPABILITIES, checkNumber, checkOptions, checkPeerId, CLEANUP_ORDER, emit, EventListeners, findService, InvalidArgumentError, isCircuitAddr, NoAvailablePathError, registerService, relayPeerOf, TAGS, TrackedTimers } from '@holdfast/interface'
import { serviceCapabilities } from '@libp2p/interface'
import { isMultiaddr } from '@multiformats/multiaddr'
import { setMaxListeners, TypedEventEmitter } from 'main-event'
import { isRelayedAddr, transportOf, withPeer } from './addrs.ts'
import { configOf } from './config.ts'
import { DEFAULT_PING_PROTOCOL } from './constants.ts'
import { registerMetrics } from './metrics.ts'
import { Heartbeat } from './ping.ts'
import { nextMode, updateRtt } from './policy.ts'
import { choosePath, snapshotOf } from './records.ts'
import { RelayBackup } from './relay-backup.ts'
import { ReservationWatchdog } from './reservation-watchdog.ts'
import { Upgrader } from './upgrade.ts'
import type { PathSelectorConfig } from './config.ts'
import type { PathConnectOptions, Path, PathSample, PathSelector as PathSelectorInterface, PathSelectorComponents, PathSelectorEvents, PathSelectorInit } from './index.ts'
import type { PathSelectorMetrics } from './metrics.ts'
import type { PathRecord, PeerRecord } from './records.ts'
import type { CleanupBroadcaster, HoldfastEvents, InternalSizes, PathKind, PathMode, WatermarkConnectionManager } from '@holdfast/interface'
import type { AbortOptions, Connection, Libp2pEvents, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { OpenConnectionOptions } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

interface PingService { protocol?: string }

type OwnEvent = keyof PathSelectorEvents

/**
 * The service: tracks every path to every peer, applies the path choice, connects and
 * upgrades. The heartbeat (`ping.ts`) and the reservation watchdog (`reservation-watchdog.ts`)
 * run beside it; the decisions are in `policy.ts`.
 */
export class PathSelector extends TypedEventEmitter<PathSelectorEvents> implements PathSelectorInterface, Startable {
  readonly [Symbol.toStringTag] = '@holdfast/path-selector'
  readonly [serviceCapabilities]: string[] = [CAPABILITIES.pathSelector]

  private readonly components: PathSelectorComponents
  private readonly log: Logger
  private readonly config: PathSelectorConfig
  private readonly timers: TrackedTimers
  private readonly peers = new Map<string, PeerRecord>()
  private readonly heartbeat: Heartbeat
  private readonly watchdog: ReservationWatchdog
  private readonly upgrader: Upgrader
  private readonly backup: RelayBackup
  private broadcaster?: CleanupBroadcaster
  private removeCleanupLayer?: () => void
  private connManager?: WatermarkConnectionManager
  private stopController = new AbortController()
  private readonly metrics?: PathSelectorMetrics
  private readonly nodeEvents: EventListeners<Libp2pEvents>
  private started = false

  constructor (components: PathSelectorComponents, init: PathSelectorInit = {}) {
    super()
    this.components = components
    this.log = components.logger.forComponent('holdfast:path-selector')
    this.config = configOf(init)
    this.timers = new TrackedTimers(this.config.clock)
    this.metrics = registerMetrics(components.metrics)
    this.backup = new RelayBackup({ peerStore: components.peerStore, log: this.log, keepRelayBackup: this.config.keepRelayBackup, connectionManager: () => this.connManager })
    const stopSignal = (): AbortSignal => this.stopController.signal
    this.heartbeat = new Heartbeat({
      config: this.config,
      timers: this.timers,
      log: this.log,
      peers: this.peers,
      stopSignal,
      onSample: (entry, path, success, rttMs) => { this.applySample(entry, path, success, rttMs) }
    })
    this.upgrader = new Upgrader({
      config: this.config,
      timers: this.timers,
      log: this.log,
      metrics: this.metrics?.upgrades,
      stopSignal,
      running: () => this.started,
      gone: entry => this.gone(entry),
      knownAddrs: async peer => this.knownAddrs(peer),
      dial: async (targets, opts) => this.dial(targets, opts)
    })
    this.watchdog = new ReservationWatchdog({
      components,
      config: this.config,
      timers: this.timers,
      log: this.log,
      metrics: this.metrics?.reservations,
      stopSignal,
      dial: async (addr, opts) => this.dial(addr, opts),
      emit: (type, detail) => { this.announce(type, detail) }
    })
    this.nodeEvents = new EventListeners<Libp2pEvents>(components.events, {
      // per connection, not per peer: a path opening or closing beside others is no cleanup
      'connection:open': this.onConnectionOpen,
      'connection:close': this.onConnectionClose,
      // our own addresses: the reservation watchdog's input
      'transport:listening': this.onAddressesChanged,
      'self:peer:update': this.onAddressesChanged
    }, this.log)
    registerService(components, this)
  }

  // ---------------------------------------------------------------- lifecycle

  start (): void {
    if (this.started) {
      return
    }
    this.started = true
    this.stopController = new AbortController()
    // every ping, upgrade and re-dial adds a listener to it while it runs
    setMaxListeners(Infinity, this.stopController.signal)
    this.nodeEvents.add()
    this.broadcaster = findService<CleanupBroadcaster>(this.components, CAPABILITIES.cleanupBroadcaster)
    this.removeCleanupLayer = this.broadcaster?.onCleanup('path-selector', CLEANUP_ORDER.pathSelector, this.onCleanup)
    this.connManager = findService<WatermarkConnectionManager>(this.components, CAPABILITIES.connectionManager)
    const ping = findService<PingService>(this.components, '@libp2p/ping')
    this.heartbeat.protocol = ping == null ? undefined : (ping.protocol ?? DEFAULT_PING_PROTOCOL)
    if (ping == null) {
      this.log('no ping service: no heartbeat, connect does not probe')
    }
    for (const connection of this.components.connectionManager.getConnections()) {
      this.connectionOpened(connection)
    }
    this.watchdog.start()
  }

  stop (): void {
    if (!this.started) {
      return
    }
    this.started = false
    this.nodeEvents.remove()
    this.removeCleanupLayer?.()
    this.removeCleanupLayer = undefined
    this.stopController.abort()
    this.timers.clearAll()
    this.heartbeat.stop()
    for (const entry of this.peers.values()) {
      entry.retryTimer = undefined
      this.backup.set(entry, false)
    }
    this.peers.clear()
    this.watchdog.stop()
  }

  // ---------------------------------------------------------------- queries

  paths (peer: PeerId): Path[] {
    return (this.peers.get(checkPeerId(peer).toString())?.paths ?? []).map(snapshotOf)
  }

  best (peer: PeerId): Path | undefined {
    const current = this.peers.get(checkPeerId(peer).toString())?.current
    return current == null ? undefined : snapshotOf(current)
  }

  mode (peer: PeerId): PathMode | undefined {
    return this.peers.get(checkPeerId(peer).toString())?.mode
  }

  report (peer: PeerId, connectionId: string, sample: PathSample): void {
    checkPeerId(peer)
    if (typeof connectionId !== 'string') {
      throw new InvalidArgumentError(`connectionId must be a string, got ${typeof connectionId}`, 'connectionId')
    }
    if (sample == null || typeof sample.success !== 'boolean') {
      throw new InvalidArgumentError('sample must be { success: boolean, rttMs?: number }', 'sample')
    }
    if (sample.rttMs !== undefined) {
      checkNumber(sample.rttMs, 'sample.rttMs', 'argument', 0)
    }
    const entry = this.peers.get(peer.toString())
    const path = entry?.paths.find(p => p.id === connectionId)
    if (entry == null || path == null) {
      return // the path closed meanwhile: a late sample is no error
    }
    this.applySample(entry, path, sample.success, sample.rttMs)
  }

  internalSizes (): InternalSizes {
    let paths = 0
    let upgrades = 0
    for (const entry of this.peers.values()) {
      paths += entry.paths.length
      upgrades += entry.upgrading == null ? 0 : 1
    }
    return {
      peers: this.peers.size,
      paths,
      timers: this.timers.size,
      // the node's events, and the cleanup layer on the broadcaster
      listeners: this.nodeEvents.size + (this.removeCleanupLayer == null ? 0 : 1),
      upgrades,
      inFlight: this.upgrader.inFlight + this.heartbeat.inFlight + this.watchdog.inFlight,
      relays: this.watchdog.size
    }
  }

  // ---------------------------------------------------------------- connect and streams

  async connect (peer: PeerId, opts?: PathConnectOptions): Promise<Connection> {
    checkPeerId(peer)
    const options = checkOptions(opts)
    if (options.addrs !== undefined && (!Array.isArray(options.addrs) || !options.addrs.every(isMultiaddr))) {
      throw new InvalidArgumentError('options.addrs must be an array of multiaddrs', 'options.addrs')
    }
    const entry = this.peers.get(peer.toString())
    if (entry?.current?.status === 'active') {
      return entry.current.connection
    }
    const addrs = (options.addrs ?? await this.knownAddrs(peer)).map(ma => withPeer(ma, peer))
    // a WebRTC-over-relay address is for the upgrade, not for the first connection
    const relayed = addrs.filter(isRelayedAddr)
    const direct = addrs.filter(ma => !isCircuitAddr(ma))
    if (relayed.length === 0 && direct.length === 0) {
      throw new AddressRequiredError(`no dialable address known for ${peer.toString()}`)
    }
    const attempt = async (targets: Multiaddr[]): Promise<Connection> => {
      const connection = await this.dial(targets, { signal: options.signal })
      // libp2p hands back an open connection without a new connection:open: track it here too
      this.connectionOpened(connection)
      await this.heartbeat.probe(connection, options, rttMs => { this.sampleOf(connection, rttMs) })
      return connection
    }
    if (direct.length === 0) {
      return attempt(relayed) // the background upgrade follows from the new path
    }
    if (relayed.length === 0) {
      return attempt(direct)
    }
    // both: race them, the first usable wins; the slower one, if it opens, is one more path
    try {
      return await Promise.any([attempt(direct), attempt(relayed)])
    } catch (err) {
      throw new NoAvailablePathError(`neither the direct nor the relayed addresses of ${peer.toString()} worked: ${(err as AggregateError).errors?.map(e => (e as Error).message).join('; ')}`)
    }
  }

  async openStream (peer: PeerId, protocols: string | string[], opts?: AbortOptions): Promise<Stream> {
    checkPeerId(peer)
    if (!(typeof protocols === 'string' ? protocols.length > 0 : Array.isArray(protocols) && protocols.length > 0 && protocols.every(p => typeof p === 'string' && p.length > 0))) {
      throw new InvalidArgumentError('protocols must be a protocol name or a non-empty array of them', 'protocols')
    }
    const options = checkOptions(opts)
    let entry = this.peers.get(peer.toString())
    if (entry == null || entry.paths.length === 0) {
      await this.connect(peer, options)
      entry = this.peers.get(peer.toString())
    }
    const tried = new Set<string>()
    const errors: string[] = []
    while (entry != null) {
      const path = choosePath(this.config.selectPath, entry.paths.filter(p => !tried.has(p.id)), entry.current, this.log)
      if (path == null) {
        break
      }
      tried.add(path.id)
      try {
        const stream = await path.connection.newStream(protocols, { ...options, runOnLimitedConnection: path.kind === 'relayed' })
        this.metrics?.streams.increment({ [tried.size === 1 ? path.kind : `${path.kind}-fallback`]: true })
        this.applySample(entry, path, true, undefined)
        return stream
      } catch (err) {
        const error = err as Error
        // the caller's cancellation and a protocol the peer lacks say nothing about the path
        if (options.signal?.aborted === true || error.name === 'UnsupportedProtocolError') {
          throw err
        }
        this.log('stream on %s path %s to %p failed, trying the next - %e', path.kind, path.id, peer, err)
        errors.push(`${path.kind} ${path.id}: ${error.message}`)
        this.applySample(entry, path, false, undefined)
      }
      entry = this.peers.get(peer.toString())
    }
    throw new NoAvailablePathError(`no path to ${peer.toString()} could open a stream${errors.length > 0 ? `: ${errors.join('; ')}` : ''}`)
  }

  // ---------------------------------------------------------------- upgrade

  async upgrade (peer: PeerId, opts?: AbortOptions): Promise<boolean> {
    checkPeerId(peer)
    const options = checkOptions(opts)
    const entry = this.peers.get(peer.toString())
    return entry == null ? false : this.upgrader.upgrade(entry, options)
  }

  // ---------------------------------------------------------------- path tracking

  private readonly onConnectionOpen = (event: CustomEvent<Connection>): void => {
    this.connectionOpened(event.detail)
  }

  private readonly onConnectionClose = (event: CustomEvent<Connection>): void => {
    this.connectionClosed(event.detail)
  }

  private readonly onAddressesChanged = (): void => {
    this.watchdog.refresh()
  }

  /** The broadcaster's cleanup of a peer, whatever its trigger: what we hold for it goes */
  private readonly onCleanup = (peer: PeerId): void => {
    const entry = this.peers.get(peer.toString())
    if (entry != null) {
      this.drop(entry)
    }
  }

  private connectionOpened (connection: Connection): void {
    if (!this.started || connection.status !== 'open') {
      return
    }
    const key = connection.remotePeer.toString()
    let entry = this.peers.get(key)
    if (entry?.paths.some(p => p.id === connection.id) === true) {
      return
    }
    if (entry == null) {
      entry = { peer: connection.remotePeer, paths: [], current: undefined, mode: undefined, modeSince: this.config.clock.now(), upgrading: undefined, upgradeAttempts: 0, retryTimer: undefined, backup: false }
      this.peers.set(key, entry)
    }
    const kind: PathKind = connection.direct === false ? 'relayed' : 'direct'
    const path: PathRecord = {
      id: connection.id,
      connection,
      kind,
      transport: transportOf(connection.remoteAddr),
      // made through a relay: WebRTC over the relay, or a direct connection beside a relayed one (DCUtR)
      holePunched: kind === 'direct' && (isCircuitAddr(connection.remoteAddr) || entry.paths.some(p => p.kind === 'relayed')),
      realmRelay: false,
      rttMs: undefined,
      successes: 0,
      failures: 0,
      status: 'active',
      lastActive: this.config.clock.now(),
      pinging: false
    }
    entry.paths = [...entry.paths, path]
    if (kind === 'relayed') {
      this.markRealmRelay(entry, path)
    }
    this.recompute(entry)
    if (entry.mode === 'relay-only') {
      this.upgrader.schedule(entry, 0)
    }
    this.heartbeat.ensure(this.started)
  }

  private connectionClosed (connection: Connection): void {
    this.watchdog.connectionClosed(connection)
    const entry = this.peers.get(connection.remotePeer.toString())
    const path = entry?.paths.find(p => p.id === connection.id)
    if (entry == null || path == null) {
      return
    }
    path.status = 'closed'
    entry.paths = entry.paths.filter(p => p !== path)
    if (entry.paths.length === 0) {
      // the peer's mode must not outlive its last path: without a broadcaster this is the
      // only trigger, and with one its peer-disconnected cleanup comes after the layers
      // ordered before ours and then finds nothing left
      this.drop(entry)
      return
    }
    this.recompute(entry)
  }

  /** Forgets a peer: its paths, its upgrade retry, its relay-backup tag and protection */
  private drop (entry: PeerRecord): void {
    this.peers.delete(entry.peer.toString())
    for (const path of entry.paths) {
      path.status = 'closed'
    }
    entry.paths = []
    this.upgrader.forget(entry)
    this.backup.set(entry, false)
    entry.mode = undefined
    entry.current = undefined
    this.heartbeat.ensure(this.started)
  }

  /** The peer was dropped since `entry` was made, or its cleanup is running: its work ends */
  private gone (entry: PeerRecord): boolean {
    return this.peers.get(entry.peer.toString()) !== entry || this.broadcaster?.isClosing(entry.peer) === true
  }

  /** A relayed path through a relay of the app's realm ranks above any other relay */
  private markRealmRelay (entry: PeerRecord, path: PathRecord): void {
    const relayPeer = relayPeerOf(path.connection.remoteAddr)
    const relay = relayPeer == null ? undefined : this.components.connectionManager.getConnections().find(c => c.remotePeer.toString() === relayPeer)?.remotePeer
    if (relay == null) {
      return
    }
    this.components.peerStore.get(relay).then(info => {
      if (info.tags.has(TAGS.realmMember) && path.status !== 'closed') {
        path.realmRelay = true
        this.recompute(entry)
      }
    }, () => {})
  }

  private sampleOf (connection: Connection, rttMs: number): void {
    const entry = this.peers.get(connection.remotePeer.toString())
    const path = entry?.paths.find(p => p.id === connection.id)
    if (entry != null && path != null) {
      this.applySample(entry, path, true, rttMs)
    }
  }

  private applySample (entry: PeerRecord, path: PathRecord, success: boolean, rttMs: number | undefined): void {
    if (path.status === 'closed') {
      return
    }
    if (rttMs !== undefined) {
      path.rttMs = updateRtt(path.rttMs, rttMs, this.config.rttAlpha)
    }
    if (success) {
      path.successes++
      path.failures = 0
      path.status = 'active'
      path.lastActive = this.config.clock.now()
    } else {
      path.failures++
      if (path.failures >= this.config.failuresToDemote) {
        path.status = 'failing'
      }
    }
    this.recompute(entry)
  }

  /** Re-runs the path choice and applies it: mode, events, the relay backup, the upgrade retry */
  private recompute (entry: PeerRecord): void {
    const best = choosePath(this.config.selectPath, entry.paths, entry.current, this.log)
    entry.current = best
    const from = entry.mode
    const to = nextMode(from, best?.kind)
    this.backup.update(entry)
    if (to === from || to === undefined || best === undefined) {
      return
    }
    const now = this.config.clock.now()
    const durationMs = now - entry.modeSince
    entry.mode = to
    entry.modeSince = now
    this.metrics?.modes.increment({ [to]: true })
    this.log('%p: %s -> %s (%s)', entry.peer, from ?? 'none', to, best.kind)
    this.announce('path:changed', { peer: entry.peer, from, to, best: best.kind })
    if (to === 'direct-primary') {
      this.upgrader.succeeded(entry)
      if (from !== undefined) {
        this.announce('path:upgraded', { peer: entry.peer, durationMs })
      }
    } else if (to === 'fallback' && from === 'direct-primary') {
      this.announce('path:fallback', { peer: entry.peer })
      // a failing direct path may recover through the heartbeat; a closed one needs a new dial
      if (!entry.paths.some(p => p.kind === 'direct')) {
        this.upgrader.schedule(entry, this.config.retryInitialDelayMs)
      }
    }
  }

  // ---------------------------------------------------------------- helpers

  /** Every dial for a peer: through the broadcaster when the node has one, so a cleanup of the peer aborts it */
  private async dial (target: Multiaddr | Multiaddr[], opts: OpenConnectionOptions): Promise<Connection> {
    return this.broadcaster != null ? this.broadcaster.dial(target, opts) : this.components.connectionManager.openConnection(target, opts)
  }

  /** To our own listeners and through the broadcaster */
  private announce<K extends OwnEvent>(type: K, detail: HoldfastEvents[K]): void {
    emit(this, this.broadcaster, this.log, type, detail)
  }

  private async knownAddrs (peer: PeerId): Promise<Multiaddr[]> {
    try {
      return (await this.components.peerStore.get(peer)).addresses.map(a => a.multiaddr)
    } catch {
      return []
    }
  }
}
