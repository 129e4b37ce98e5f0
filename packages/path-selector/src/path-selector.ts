import { AddressRequiredError, CAPABILITIES, findService, InvalidArgumentError, InvalidConfigError, NoAvailablePathError, registerService, systemClock, TAGS, TrackedTimers } from '@holdfast/interface'
import { isPeerId, serviceCapabilities } from '@libp2p/interface'
import { byteStream } from '@libp2p/utils'
import { CODE_P2P_CIRCUIT } from '@multiformats/multiaddr'
import { anySignal } from 'any-signal'
import { TypedEventEmitter } from 'main-event'
import { equals } from 'uint8arrays/equals'
import { DEFAULT_NAT, DEFAULT_PRESET, FAILURES_TO_DEMOTE, KEEP_RELAY_BACKUP, RELAY_BACKUP_TAG_VALUE, RETRY_INITIAL_DELAY_MS, RETRY_MAX_DELAY_MS, RTT_ALPHA, UPGRADE, UPGRADE_MAX_ATTEMPTS, UPGRADE_TIMEOUT_MS } from './constants.ts'
import { isNatType, natDecision, nextMode, resolvePreset, retryDelay, selectPath, updateRtt } from './policy.ts'
import type { PathConnectOptions, Path, PathSample, PathSelector as PathSelectorInterface, PathSelectorComponents, PathSelectorEvents, PathSelectorInit } from './index.ts'
import type { KeepAlivePreset, NatType, PathStatus } from './policy.ts'
import type { CleanupBroadcaster, Clock, HoldfastEvents, InternalSizes, PathKind, PathMode, WatermarkConnectionManager } from '@holdfast/interface'
import type { AbortOptions, Connection, CounterGroup, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** libp2p ping's protocol, used when no ping service tells us its own */
const DEFAULT_PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_LENGTH = 32

/**
 * One connection to a peer. Every field is set in the literal so V8 keeps them in-object
 * (spec 03: < 256 bytes of state per path).
 */
interface PathRecord {
  readonly id: string
  readonly connection: Connection
  readonly kind: PathKind
  readonly transport: string
  readonly holePunched: boolean
  realmRelay: boolean
  rttMs: number | undefined
  successes: number
  /** consecutive failures since the last success */
  failures: number
  status: PathStatus
  lastActive: number
  pinging: boolean
}

interface PeerRecord {
  readonly peer: PeerId
  /** open paths, in the order they opened (selectPath's tie-break) */
  paths: PathRecord[]
  current: PathRecord | undefined
  mode: PathMode | undefined
  /** clock time of the last mode change */
  modeSince: number
  upgrading: Promise<boolean> | undefined
  /** upgrade attempts since the last fallback */
  upgradeAttempts: number
  retryTimer: unknown
  /** the relay-backup tag and protection are set */
  backup: boolean
}

interface RelayWatch {
  readonly relay: PeerId
  /** the relay's own address, ending with /p2p/<relay> */
  addr: Multiaddr
  lost: boolean
  lostAt: number
  attempts: number
  timer: unknown
}

interface PingService { protocol?: string }

const isRelayedAddr = (ma: Multiaddr): boolean => ma.getComponents().some(c => c.code === CODE_P2P_CIRCUIT)
const isWebRTCAddr = (ma: Multiaddr): boolean => ma.getComponents().some(c => c.name === 'webrtc' || c.name === 'webrtc-direct')

/** The transport a connection runs over, named after the multiaddr protocol that identifies it */
function transportOf (ma: Multiaddr): string {
  const names = ma.getComponents().map(c => c.name)
  for (const name of ['webrtc-direct', 'webrtc', 'webtransport', 'p2p-circuit', 'wss', 'ws', 'quic-v1', 'tcp', 'memory']) {
    if (names.includes(name)) {
      return name
    }
  }
  return 'unknown'
}

/** `ma` ending with `/p2p/<peer>`, as libp2p wants every address of one dial to name the same peer */
function withPeer (ma: Multiaddr, peer: PeerId): Multiaddr {
  const last = ma.getComponents().findLast(c => c.name === 'p2p')
  return last?.value === peer.toString() ? ma : ma.encapsulate(`/p2p/${peer.toString()}`)
}

/** The relay of a relayed address: everything before `/p2p-circuit` */
const relayOf = (ma: Multiaddr): Multiaddr => ma.decapsulateCode(CODE_P2P_CIRCUIT)

export class PathSelector extends TypedEventEmitter<PathSelectorEvents> implements PathSelectorInterface, Startable {
  readonly [Symbol.toStringTag] = '@holdfast/path-selector'
  readonly [serviceCapabilities]: string[] = [CAPABILITIES.pathSelector]

  private readonly components: PathSelectorComponents
  private readonly log: Logger
  private readonly clock: Clock
  private readonly preset: Readonly<KeepAlivePreset>
  private readonly upgradeEnabled: boolean
  private readonly keepRelayBackup: boolean
  private readonly rttAlpha: number
  private readonly failuresToDemote: number
  private readonly localNat: NatType
  private readonly natOf: (peer: PeerId) => NatType
  private readonly upgradeTimeoutMs: number
  private readonly upgradeMaxAttempts: number
  private readonly retryInitialDelayMs: number
  private readonly retryMaxDelayMs: number
  private readonly peers = new Map<string, PeerRecord>()
  private readonly relays = new Map<string, RelayWatch>()
  private readonly timers: TrackedTimers
  private heartbeatTimer: unknown
  private nodeListeners = 0
  private inFlight = 0
  private broadcaster?: CleanupBroadcaster
  private connManager?: WatermarkConnectionManager
  private pingProtocol?: string
  private stopController = new AbortController()
  private readonly metrics?: { modes: CounterGroup, upgrades: CounterGroup, streams: CounterGroup, reservations: CounterGroup }
  private started = false

  constructor (components: PathSelectorComponents, init: PathSelectorInit = {}) {
    super()
    this.components = components
    this.log = components.logger.forComponent('holdfast:path-selector')
    this.clock = init.clock ?? systemClock
    this.timers = new TrackedTimers(this.clock)
    this.preset = resolvePreset(init.preset ?? DEFAULT_PRESET)
    this.upgradeEnabled = init.upgrade ?? UPGRADE
    this.keepRelayBackup = init.keepRelayBackup ?? KEEP_RELAY_BACKUP
    this.rttAlpha = init.rttAlpha ?? RTT_ALPHA
    this.failuresToDemote = init.failuresToDemote ?? FAILURES_TO_DEMOTE
    this.localNat = init.localNat ?? DEFAULT_NAT
    this.natOf = init.natOf ?? (() => DEFAULT_NAT)
    this.upgradeTimeoutMs = init.upgradeTimeoutMs ?? UPGRADE_TIMEOUT_MS
    this.upgradeMaxAttempts = init.upgradeMaxAttempts ?? UPGRADE_MAX_ATTEMPTS
    this.retryInitialDelayMs = init.retryInitialDelayMs ?? RETRY_INITIAL_DELAY_MS
    this.retryMaxDelayMs = init.retryMaxDelayMs ?? RETRY_MAX_DELAY_MS
    this.validate()
    if (components.metrics != null) {
      this.metrics = {
        modes: components.metrics.registerCounterGroup('holdfast_path_selector_mode_changes_total', { label: 'mode', help: 'Peer mode changes, by new mode' }),
        upgrades: components.metrics.registerCounterGroup('holdfast_path_selector_upgrades_total', { label: 'result', help: 'Direct-path upgrade attempts, by result' }),
        streams: components.metrics.registerCounterGroup('holdfast_path_selector_streams_total', { label: 'path', help: 'Streams opened by openStream, by the path that carried them (fallback = not the first pick)' }),
        reservations: components.metrics.registerCounterGroup('holdfast_path_selector_reservations_total', { label: 'event', help: 'Relay reservations lost and restored' })
      }
    }
    registerService(components, this)
  }

  /** Init checks: a typed error naming the option, before anything is started */
  private validate (): void {
    if (!(this.rttAlpha > 0 && this.rttAlpha <= 1)) {
      throw new InvalidConfigError(`rttAlpha must be in (0, 1], got ${String(this.rttAlpha)}`, 'rttAlpha')
    }
    if (!Number.isInteger(this.failuresToDemote) || this.failuresToDemote < 1) {
      throw new InvalidConfigError(`failuresToDemote must be a positive integer, got ${String(this.failuresToDemote)}`, 'failuresToDemote')
    }
    if (!isNatType(this.localNat)) {
      throw new InvalidConfigError(`localNat must be one of none, full-cone, restricted, symmetric, unknown, got ${String(this.localNat)}`, 'localNat')
    }
    if (!Number.isInteger(this.upgradeMaxAttempts) || this.upgradeMaxAttempts < 0) {
      throw new InvalidConfigError(`upgradeMaxAttempts must be a non-negative integer, got ${String(this.upgradeMaxAttempts)}`, 'upgradeMaxAttempts')
    }
    for (const option of ['upgradeTimeoutMs', 'retryInitialDelayMs', 'retryMaxDelayMs'] as const) {
      const value = this[option]
      if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
        throw new InvalidConfigError(`${option} must be a positive finite number of ms, got ${String(value)}`, option)
      }
    }
  }

  // ---------------------------------------------------------------- lifecycle

  start (): void {
    if (this.started) {
      return
    }
    this.started = true
    this.stopController = new AbortController()
    const events = this.components.events
    events.addEventListener('connection:open', this.onConnectionOpen)
    events.addEventListener('connection:close', this.onConnectionClose)
    events.addEventListener('transport:listening', this.onAddressesChanged)
    events.addEventListener('self:peer:update', this.onAddressesChanged)
    this.nodeListeners = 4
    this.broadcaster = findService<CleanupBroadcaster>(this.components, CAPABILITIES.cleanupBroadcaster)
    this.connManager = findService<WatermarkConnectionManager>(this.components, CAPABILITIES.connectionManager)
    const ping = findService<PingService>(this.components, '@libp2p/ping')
    this.pingProtocol = ping == null ? undefined : (ping.protocol ?? DEFAULT_PING_PROTOCOL)
    if (this.pingProtocol == null) {
      this.log('no ping service: no heartbeat, connect does not probe')
    }
    for (const connection of this.components.connectionManager.getConnections()) {
      this.connectionOpened(connection)
    }
    this.refreshReservations()
  }

  stop (): void {
    if (!this.started) {
      return
    }
    this.started = false
    const events = this.components.events
    events.removeEventListener('connection:open', this.onConnectionOpen)
    events.removeEventListener('connection:close', this.onConnectionClose)
    events.removeEventListener('transport:listening', this.onAddressesChanged)
    events.removeEventListener('self:peer:update', this.onAddressesChanged)
    this.nodeListeners = 0
    this.stopController.abort()
    this.timers.clearAll()
    this.heartbeatTimer = undefined
    for (const entry of this.peers.values()) {
      entry.retryTimer = undefined
      this.setBackup(entry, false)
    }
    this.peers.clear()
    this.relays.clear()
  }

  // ---------------------------------------------------------------- queries

  paths (peer: PeerId): Path[] {
    return (this.peers.get(this.keyOf(peer))?.paths ?? []).map(p => ({
      connectionId: p.id,
      kind: p.kind,
      transport: p.transport,
      remoteAddr: p.connection.remoteAddr,
      rttMs: p.rttMs,
      successes: p.successes,
      failures: p.failures,
      status: p.status,
      lastActive: p.lastActive,
      holePunched: p.holePunched
    }))
  }

  best (peer: PeerId): Path | undefined {
    const entry = this.peers.get(this.keyOf(peer))
    return entry?.current == null ? undefined : this.paths(peer).find(p => p.connectionId === entry.current?.id)
  }

  mode (peer: PeerId): PathMode | undefined {
    return this.peers.get(this.keyOf(peer))?.mode
  }

  report (peer: PeerId, connectionId: string, sample: PathSample): void {
    if (sample == null || typeof sample.success !== 'boolean') {
      throw new InvalidArgumentError('sample must be { success: boolean, rttMs?: number }', 'sample')
    }
    if (sample.rttMs !== undefined && (typeof sample.rttMs !== 'number' || !Number.isFinite(sample.rttMs) || sample.rttMs < 0)) {
      throw new InvalidArgumentError(`sample.rttMs must be a non-negative finite number, got ${String(sample.rttMs)}`, 'sample')
    }
    const entry = this.peers.get(this.keyOf(peer))
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
      listeners: this.nodeListeners,
      upgrades,
      inFlight: this.inFlight,
      relays: this.relays.size
    }
  }

  // ---------------------------------------------------------------- connect and streams

  async connect (peer: PeerId, opts: PathConnectOptions = {}): Promise<Connection> {
    if (!isPeerId(peer)) {
      throw new InvalidArgumentError('peer must be a PeerId', 'peer')
    }
    const entry = this.peers.get(peer.toString())
    if (entry?.current?.status === 'active') {
      return entry.current.connection
    }
    const addrs = (opts.addrs ?? await this.knownAddrs(peer)).map(ma => withPeer(ma, peer))
    // a WebRTC-over-relay address is for the upgrade, not for the first connection
    const relayed = addrs.filter(ma => isRelayedAddr(ma) && !isWebRTCAddr(ma))
    const direct = addrs.filter(ma => !isRelayedAddr(ma))
    if (relayed.length === 0 && direct.length === 0) {
      throw new AddressRequiredError(`no dialable address known for ${peer.toString()}`)
    }
    const dial = async (targets: Multiaddr[]): Promise<Connection> => {
      const connection = await this.components.connectionManager.openConnection(targets, opts)
      await this.probe(connection, opts)
      return connection
    }
    if (direct.length === 0) {
      return dial(relayed) // the background upgrade follows from connection:open
    }
    if (relayed.length === 0) {
      return dial(direct)
    }
    // both: race them, the first usable wins; the slower one, if it opens, is one more path
    try {
      return await Promise.any([dial(direct), dial(relayed)])
    } catch (err) {
      throw new NoAvailablePathError(`neither the direct nor the relayed addresses of ${peer.toString()} worked: ${(err as AggregateError).errors?.map(e => (e as Error).message).join('; ')}`)
    }
  }

  async openStream (peer: PeerId, protocols: string | string[], opts: AbortOptions = {}): Promise<Stream> {
    if (!isPeerId(peer)) {
      throw new InvalidArgumentError('peer must be a PeerId', 'peer')
    }
    let entry = this.peers.get(peer.toString())
    if (entry == null || entry.paths.length === 0) {
      await this.connect(peer, opts)
      entry = this.peers.get(peer.toString())
    }
    const tried = new Set<string>()
    const errors: string[] = []
    while (entry != null) {
      const remaining = entry.paths.filter(p => !tried.has(p.id))
      const path = selectPath(remaining, entry.current)
      if (path == null) {
        break
      }
      tried.add(path.id)
      try {
        const stream = await path.connection.newStream(protocols, { ...opts, runOnLimitedConnection: path.kind === 'relayed' })
        this.metrics?.streams.increment({ [tried.size === 1 ? path.kind : `${path.kind}-fallback`]: true })
        this.applySample(entry, path, true, undefined)
        return stream
      } catch (err) {
        const error = err as Error
        // the caller's cancellation and a protocol the peer lacks say nothing about the path
        if (opts.signal?.aborted === true || error.name === 'UnsupportedProtocolError') {
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

  async upgrade (peer: PeerId, opts: AbortOptions = {}): Promise<boolean> {
    if (!isPeerId(peer)) {
      throw new InvalidArgumentError('peer must be a PeerId', 'peer')
    }
    const entry = this.peers.get(peer.toString())
    if (entry == null) {
      return false
    }
    if (entry.paths.some(p => p.kind === 'direct' && p.status === 'active')) {
      return true
    }
    const relayed = entry.paths.find(p => p.kind === 'relayed' && p.status !== 'closed')
    if (relayed == null) {
      return false
    }
    const decision = natDecision(this.localNat, this.natOf(peer))
    if (decision === 'relay') {
      this.log('NAT matrix says relay for %p (%s -> %s): no upgrade', peer, this.localNat, this.natOf(peer))
      return false
    }
    entry.upgrading ??= this.dialDirect(entry, relayed, opts).finally(() => { entry.upgrading = undefined })
    return entry.upgrading
  }

  /**
   * WebRTC private-to-private through the relay: the peer's `<relay>/p2p-circuit/webrtc`
   * addresses, else one made from the relayed connection's own address. `force`, because
   * libp2p would otherwise hand back the open relayed connection when it has no limits.
   */
  private async dialDirect (entry: PeerRecord, relayed: PathRecord, opts: AbortOptions): Promise<boolean> {
    const known = (await this.knownAddrs(entry.peer)).filter(ma => isWebRTCAddr(ma)).map(ma => withPeer(ma, entry.peer))
    const derived = relayOf(relayed.connection.remoteAddr).encapsulate(`/p2p-circuit/webrtc/p2p/${entry.peer.toString()}`)
    const targets = known.some(ma => ma.equals(derived)) ? known : [...known, derived]
    const timeout = this.timeoutSignal(this.upgradeTimeoutMs)
    const signal = anySignal([timeout.signal, this.stopController.signal, opts.signal])
    this.inFlight++
    try {
      const connection = await this.components.connectionManager.openConnection(targets, { signal, force: true })
      const ok = connection.direct !== false && connection.limits == null
      this.metrics?.upgrades.increment({ [ok ? 'success' : 'failed']: true })
      return ok
    } catch (err) {
      this.log('upgrade of %p failed - %e', entry.peer, err)
      this.metrics?.upgrades.increment({ failed: true })
      if (opts.signal?.aborted === true) {
        throw err
      }
      return false
    } finally {
      this.inFlight--
      signal.clear()
      timeout.clear()
    }
  }

  /** The side that dialed the relayed connection upgrades, so two WebRTC dials don't cross */
  private shouldUpgrade (entry: PeerRecord): boolean {
    return this.upgradeEnabled && entry.paths.some(p => p.kind === 'relayed' && p.connection.direction === 'outbound')
  }

  private scheduleUpgrade (entry: PeerRecord, delayMs: number): void {
    if (!this.started || entry.retryTimer != null || entry.upgrading != null || !this.shouldUpgrade(entry)) {
      return
    }
    entry.retryTimer = this.timers.set(() => {
      entry.retryTimer = undefined
      if (this.peers.get(entry.peer.toString()) !== entry) {
        return
      }
      entry.upgradeAttempts++
      this.upgrade(entry.peer).then(ok => {
        if (!ok && entry.mode !== 'direct-primary' && entry.upgradeAttempts < this.upgradeMaxAttempts) {
          this.scheduleUpgrade(entry, retryDelay(entry.upgradeAttempts - 1, this.retryInitialDelayMs, this.retryMaxDelayMs))
        }
      }, err => { this.log.error('upgrade of %p threw - %e', entry.peer, err) })
    }, delayMs)
  }

  // ---------------------------------------------------------------- path tracking

  private readonly onConnectionOpen = (event: CustomEvent<Connection>): void => {
    try {
      this.connectionOpened(event.detail)
    } catch (err) {
      this.log.error('connection:open handling failed - %e', err)
    }
  }

  private readonly onConnectionClose = (event: CustomEvent<Connection>): void => {
    try {
      this.connectionClosed(event.detail)
    } catch (err) {
      this.log.error('connection:close handling failed - %e', err)
    }
  }

  private connectionOpened (connection: Connection): void {
    if (connection.status !== 'open') {
      return
    }
    const key = connection.remotePeer.toString()
    let entry = this.peers.get(key)
    if (entry?.paths.some(p => p.id === connection.id) === true) {
      return
    }
    if (entry == null) {
      entry = { peer: connection.remotePeer, paths: [], current: undefined, mode: undefined, modeSince: this.clock.now(), upgrading: undefined, upgradeAttempts: 0, retryTimer: undefined, backup: false }
      this.peers.set(key, entry)
    }
    const kind: PathKind = connection.direct === false ? 'relayed' : 'direct'
    const path: PathRecord = {
      id: connection.id,
      connection,
      kind,
      transport: transportOf(connection.remoteAddr),
      // made through a relay: WebRTC over the relay, or a direct connection beside a relayed one (DCUtR)
      holePunched: kind === 'direct' && (isRelayedAddr(connection.remoteAddr) || entry.paths.some(p => p.kind === 'relayed')),
      realmRelay: false,
      rttMs: undefined,
      successes: 0,
      failures: 0,
      status: 'active',
      lastActive: this.clock.now(),
      pinging: false
    }
    entry.paths = [...entry.paths, path]
    if (kind === 'relayed') {
      this.markRealmRelay(entry, path)
    }
    this.recompute(entry)
    if (entry.mode === 'relay-only') {
      this.scheduleUpgrade(entry, 0)
    }
    this.ensureHeartbeat()
  }

  private connectionClosed (connection: Connection): void {
    this.relayConnectionClosed(connection)
    const key = connection.remotePeer.toString()
    const entry = this.peers.get(key)
    const path = entry?.paths.find(p => p.id === connection.id)
    if (entry == null || path == null) {
      return
    }
    path.status = 'closed'
    entry.paths = entry.paths.filter(p => p !== path)
    if (entry.paths.length === 0) {
      this.peers.delete(key)
      this.timers.clear(entry.retryTimer)
      entry.retryTimer = undefined
      this.setBackup(entry, false)
      entry.mode = undefined
      entry.current = undefined
      this.ensureHeartbeat()
      return
    }
    this.recompute(entry)
  }

  /** A relayed path through a relay of the app's realm ranks above any other relay */
  private markRealmRelay (entry: PeerRecord, path: PathRecord): void {
    const relayPeer = relayOf(path.connection.remoteAddr).getComponents().findLast(c => c.name === 'p2p')?.value
    if (relayPeer == null) {
      return
    }
    const relay = this.components.connectionManager.getConnections().find(c => c.remotePeer.toString() === relayPeer)?.remotePeer
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

  private applySample (entry: PeerRecord, path: PathRecord, success: boolean, rttMs: number | undefined): void {
    if (path.status === 'closed') {
      return
    }
    if (rttMs !== undefined) {
      path.rttMs = updateRtt(path.rttMs, rttMs, this.rttAlpha)
    }
    if (success) {
      path.successes++
      path.failures = 0
      path.status = 'active'
      path.lastActive = this.clock.now()
    } else {
      path.failures++
      if (path.failures >= this.failuresToDemote) {
        path.status = 'failing'
      }
    }
    this.recompute(entry)
  }

  /** Re-runs the selection and applies it: mode, events, the relay backup, the upgrade retry */
  private recompute (entry: PeerRecord): void {
    const best = selectPath(entry.paths, entry.current)
    entry.current = best
    const from = entry.mode
    const to = nextMode(from, best?.kind)
    this.updateBackup(entry)
    if (to === from || to === undefined || best === undefined) {
      return
    }
    const now = this.clock.now()
    const durationMs = now - entry.modeSince
    entry.mode = to
    entry.modeSince = now
    this.metrics?.modes.increment({ [to]: true })
    this.log('%p: %s -> %s (%s)', entry.peer, from ?? 'none', to, best.kind)
    this.emit('path:changed', { peer: entry.peer, from, to, best: best.kind })
    if (to === 'direct-primary') {
      entry.upgradeAttempts = 0
      this.timers.clear(entry.retryTimer)
      entry.retryTimer = undefined
      if (from !== undefined) {
        this.emit('path:upgraded', { peer: entry.peer, durationMs })
      }
    } else if (to === 'fallback' && from === 'direct-primary') {
      this.emit('path:fallback', { peer: entry.peer })
      // a failing direct path may recover through the heartbeat; a closed one needs a new dial
      if (!entry.paths.some(p => p.kind === 'direct')) {
        this.scheduleUpgrade(entry, this.retryInitialDelayMs)
      }
    }
  }

  /**
   * Beside a direct path, a relayed one is the backup: tag it in the peer store (so libp2p's
   * pruner keeps the peer) and protect it in the holdfast connection manager when there is one.
   * Without `keepRelayBackup` the relayed connections are closed instead.
   */
  private updateBackup (entry: PeerRecord): void {
    const relayed = entry.paths.filter(p => p.kind === 'relayed')
    const hasDirect = entry.paths.some(p => p.kind === 'direct')
    if (hasDirect && relayed.length > 0 && !this.keepRelayBackup && entry.current?.kind === 'direct') {
      for (const p of relayed) {
        p.connection.close().catch(err => { p.connection.abort(err) })
      }
      return
    }
    this.setBackup(entry, relayed.length > 0 && (hasDirect || entry.mode === 'fallback'))
  }

  private setBackup (entry: PeerRecord, on: boolean): void {
    if (entry.backup === on) {
      return
    }
    entry.backup = on
    if (on) {
      this.connManager?.protect(entry.peer, TAGS.relayBackup)
    } else {
      this.connManager?.unprotect(entry.peer, TAGS.relayBackup)
    }
    this.components.peerStore.merge(entry.peer, { tags: { [TAGS.relayBackup]: on ? { value: RELAY_BACKUP_TAG_VALUE } : undefined } })
      .catch(err => { this.log('could not %s the relay-backup tag of %p - %e', on ? 'set' : 'remove', entry.peer, err) })
  }

  // ---------------------------------------------------------------- heartbeat

  /** One timer for all peers, running only while there are paths to watch */
  private ensureHeartbeat (): void {
    const wanted = this.started && this.pingProtocol != null && this.peers.size > 0
    if (wanted && this.heartbeatTimer == null) {
      this.heartbeatTimer = this.timers.set(this.heartbeat, this.preset.heartbeatIntervalMs)
    } else if (!wanted && this.heartbeatTimer != null) {
      this.timers.clear(this.heartbeatTimer)
      this.heartbeatTimer = undefined
    }
  }

  /** Pings the path in use of every peer, and any other path silent for a keep-alive period */
  private readonly heartbeat = (): void => {
    this.heartbeatTimer = undefined
    const now = this.clock.now()
    for (const entry of this.peers.values()) {
      for (const path of entry.paths) {
        if (path === entry.current || now - path.lastActive >= this.preset.keepAlivePeriodMs) {
          this.pingPath(entry, path)
        }
      }
    }
    this.ensureHeartbeat()
  }

  private pingPath (entry: PeerRecord, path: PathRecord): void {
    if (path.pinging || this.pingProtocol == null) {
      return
    }
    path.pinging = true
    this.inFlight++
    this.ping(path.connection, this.pingProtocol).then(
      rttMs => { this.applySample(entry, path, true, rttMs) },
      err => {
        if (!this.started) {
          return
        }
        // a peer without the ping protocol still answered the negotiation over this path
        const answered = (err as Error).name === 'UnsupportedProtocolError'
        if (!answered) {
          this.log('heartbeat on %s path %s to %p failed - %e', path.kind, path.id, entry.peer, err)
        }
        this.applySample(entry, path, answered, undefined)
      }
    ).finally(() => {
      path.pinging = false
      this.inFlight--
    })
  }

  /** libp2p ping on one given connection (the ping service can only ping a peer) */
  private async ping (connection: Connection, protocol: string, opts: AbortOptions = {}): Promise<number> {
    const timeout = this.timeoutSignal(this.preset.heartbeatIntervalMs)
    const signal = anySignal([timeout.signal, this.stopController.signal, opts.signal])
    try {
      const stream = await connection.newStream(protocol, { signal, runOnLimitedConnection: true })
      try {
        const bytes = byteStream(stream)
        const data = crypto.getRandomValues(new Uint8Array(PING_LENGTH))
        const start = this.clock.now()
        await bytes.write(data, { signal })
        const echo = await bytes.read({ bytes: PING_LENGTH, signal })
        const rttMs = this.clock.now() - start
        if (!equals(echo.subarray(), data)) {
          throw new Error('wrong ping echo')
        }
        await stream.close({ signal }).catch(() => {})
        return rttMs
      } catch (err) {
        stream.abort(err as Error)
        throw err
      }
    } finally {
      signal.clear()
      timeout.clear()
    }
  }

  /** `connect` resolves only once a stream can be opened: a ping proves it */
  private async probe (connection: Connection, opts: AbortOptions): Promise<void> {
    if (this.pingProtocol == null) {
      return
    }
    this.inFlight++
    try {
      const rttMs = await this.ping(connection, this.pingProtocol, opts)
      const entry = this.peers.get(connection.remotePeer.toString())
      const path = entry?.paths.find(p => p.id === connection.id)
      if (entry != null && path != null) {
        this.applySample(entry, path, true, rttMs)
      }
    } finally {
      this.inFlight--
    }
  }

  // ---------------------------------------------------------------- relay reservation watchdog

  private readonly onAddressesChanged = (): void => {
    try {
      this.refreshReservations()
    } catch (err) {
      this.log.error('reservation refresh failed - %e', err)
    }
  }

  /** Our relay reservations, from our own `<relay>/p2p-circuit/p2p/<self>` addresses */
  private reservedRelays (): Map<string, Multiaddr> {
    const relays = new Map<string, Multiaddr>()
    for (const ma of this.components.addressManager.getAddresses()) {
      if (!isRelayedAddr(ma) || isWebRTCAddr(ma)) {
        continue
      }
      const relayAddr = relayOf(ma)
      const relay = relayAddr.getComponents().findLast(c => c.name === 'p2p')?.value
      if (relay != null) {
        relays.set(relay, relayAddr)
      }
    }
    return relays
  }

  private refreshReservations (): void {
    if (!this.started) {
      return
    }
    const current = this.reservedRelays()
    for (const [relay, addr] of current) {
      const watch = this.relays.get(relay)
      if (watch == null) {
        const connection = this.components.connectionManager.getConnections().find(c => c.remotePeer.toString() === relay)
        if (connection != null) {
          this.relays.set(relay, { relay: connection.remotePeer, addr, lost: false, lostAt: 0, attempts: 0, timer: undefined })
        }
      } else if (watch.lost) {
        watch.lost = false
        watch.addr = addr
        this.timers.clear(watch.timer)
        watch.timer = undefined
        this.metrics?.reservations.increment({ restored: true })
        this.log('reservation on relay %p restored after %d attempts', watch.relay, watch.attempts)
        this.emit('relay:reservation-restored', { relay: watch.relay, attempts: watch.attempts, downtimeMs: this.clock.now() - watch.lostAt })
        watch.attempts = 0
      }
    }
    for (const [relay, watch] of this.relays) {
      if (!watch.lost && !current.has(relay)) {
        this.reservationLost(watch)
      }
    }
  }

  private relayConnectionClosed (connection: Connection): void {
    const watch = this.relays.get(connection.remotePeer.toString())
    // the relay transport drops the reservation's addresses in its own connection:close
    // listener, which runs before ours (it was added first)
    if (watch != null && !watch.lost && !this.reservedRelays().has(connection.remotePeer.toString())) {
      this.reservationLost(watch)
    }
  }

  private reservationLost (watch: RelayWatch): void {
    watch.lost = true
    watch.lostAt = this.clock.now()
    watch.attempts = 0
    this.metrics?.reservations.increment({ lost: true })
    this.log('reservation on relay %p lost', watch.relay)
    this.emit('relay:reservation-lost', { relay: watch.relay })
    this.scheduleRestore(watch)
  }

  /**
   * Re-dials the relay and asks for the reservation again, with backoff, until it is back
   * or the service stops. libp2p re-makes a discovered reservation itself once it sees the
   * relay again, but not one configured by address (js-libp2p#3601), hence the `listen`.
   */
  private scheduleRestore (watch: RelayWatch): void {
    watch.timer = this.timers.set(() => {
      watch.timer = undefined
      if (!watch.lost || this.relays.get(watch.relay.toString()) !== watch) {
        return
      }
      watch.attempts++
      this.restore(watch).catch(err => {
        this.log('reservation on %p not restored (attempt %d) - %e', watch.relay, watch.attempts, err)
      }).finally(() => {
        if (this.started && watch.lost && watch.timer == null && this.relays.get(watch.relay.toString()) === watch) {
          this.scheduleRestore(watch)
        }
      })
    }, retryDelay(watch.attempts, this.retryInitialDelayMs, this.retryMaxDelayMs))
  }

  private async restore (watch: RelayWatch): Promise<void> {
    const timeout = this.timeoutSignal(this.upgradeTimeoutMs)
    const signal = anySignal([timeout.signal, this.stopController.signal])
    this.inFlight++
    try {
      await this.components.connectionManager.openConnection(watch.addr, { signal })
      if (!this.reservedRelays().has(watch.relay.toString())) {
        await this.components.transportManager.listen([watch.addr.encapsulate('/p2p-circuit')])
      }
      this.refreshReservations()
    } finally {
      this.inFlight--
      signal.clear()
      timeout.clear()
    }
  }

  // ---------------------------------------------------------------- helpers

  private emit<K extends keyof PathSelectorEvents>(type: K, detail: HoldfastEvents[K]): void {
    this.safeDispatchEvent(type, { detail } as unknown as CustomEventInit<PathSelectorEvents[K]>)
    this.broadcaster?.publish(type, detail)
  }

  private async knownAddrs (peer: PeerId): Promise<Multiaddr[]> {
    try {
      return (await this.components.peerStore.get(peer)).addresses.map(a => a.multiaddr)
    } catch {
      return []
    }
  }

  private keyOf (peer: PeerId): string {
    if (!isPeerId(peer)) {
      throw new InvalidArgumentError('peer must be a PeerId', 'peer')
    }
    return peer.toString()
  }

  /** A signal that aborts after `ms` of the service's clock */
  private timeoutSignal (ms: number): { signal: AbortSignal, clear(): void } {
    const controller = new AbortController()
    const timer = this.timers.set(() => { controller.abort(new Error(`timed out after ${ms} ms`)) }, ms)
    return { signal: controller.signal, clear: () => { this.timers.clear(timer) } }
  }
}
