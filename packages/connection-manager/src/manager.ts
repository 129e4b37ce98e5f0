import { addGaterLayer, CAPABILITIES, ConnectionLimitError, findService, gaterLayers, InvalidArgumentError, InvalidConfigError, registerService, removeGaterLayer, systemClock } from '@holdfast/interface'
import { isPeerId, serviceCapabilities } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import { GRACE_PERIOD, HIGH_WATER, HYSTERESIS, IDLE_SWEEPS_PER_TIMEOUT, IDLE_TIMEOUT, LOW_WATER, PROTECTED_STORE_TAG, PROTECTED_STORE_TAG_VALUE, SILENCE_PERIOD } from './constants.ts'
import { applyDecay, bumpValue } from './decay.ts'
import { IN_GRACE, PROTECTED, TRIMMABLE, autoTrimDue, checkSettings, defaultHysteresis, isIdle, overLimit, planTrim, seedBonus, sortClosing, seedParts, seedScore, trimTarget } from './policy.ts'
import type { DecayState, TagRecord } from './decay.ts'
import type { ConnectionManagerEvents, ConnectionManagerEventType, WatermarkConnectionManagerComponents, WatermarkConnectionManagerInit } from './index.ts'
import type { PlanPeers, PlanResult, Settings } from './policy.ts'
import type { BumpFn, CleanupBroadcaster, Clock, CloseReason, ConnectionDirection, ConnManagerStats, DecayFn, DecayingTag, HoldfastEvents, InternalSizes, Limits, PeerConnInfo, ScoreFn, ScoreInput, TrimPlan, TrimReport, WatermarkConnectionManager as WatermarkConnectionManagerInterface } from '@holdfast/interface'
import type { AbortOptions, Connection, CounterGroup, Counter, Libp2pEvents, Logger, Peer, PeerId, Startable } from '@libp2p/interface'

/** the manager's layer in the node's gater chain */
const GATE_OWNER = '@holdfast/connection-manager'

/** One open connection. `idleSince`: first sweep (or the open) that saw it without streams */
interface ConnEntry {
  readonly connection: Connection
  idleSince: number | undefined
  /** the manager called close() on it and waits for libp2p's connection:close */
  closing: boolean
}

/** One connected peer; dropped with its last connection (tags go with it, as in go-libp2p) */
interface PeerEntry {
  readonly peer: PeerId
  readonly key: string
  readonly firstSeen: number
  /** replaced, never pushed to, so the backing store is exactly as long as needed */
  conns: readonly ConnEntry[]
  /** connections not being closed by the manager */
  open: number
  /** `protections` has the peer: kept here so a trim of thousands of peers reads no map */
  protected: boolean
  inbound: number
  outbound: number
  tags: Map<string, number> | undefined
  decaying: Map<TagRecord, DecayState> | undefined
  /** the peer's peer-store tags (our protection mirror excluded), from peer:update */
  storeTags: Record<string, number> | undefined
  /** their sum, kept with them: the trim's hot path reads only this for most peers */
  storeSum: number
}

interface Protection {
  readonly peer: PeerId
  readonly tags: Set<string>
}

const LISTENED = ['connection:open', 'connection:close', 'peer:update'] as const

export class WatermarkConnectionManager extends TypedEventEmitter<ConnectionManagerEvents> implements WatermarkConnectionManagerInterface, Startable {
  readonly [Symbol.toStringTag] = '@holdfast/connection-manager'
  readonly [serviceCapabilities]: string[] = [CAPABILITIES.connectionManager]

  private readonly components: WatermarkConnectionManagerComponents
  private readonly log: Logger
  private readonly clock: Clock
  private readonly score: ScoreFn
  private settings: Settings
  /** the hysteresis the app chose; undefined follows the watermarks */
  private readonly hysteresisInit: number | undefined

  private readonly peers = new Map<string, PeerEntry>()
  private readonly protections = new Map<string, Protection>()
  private readonly decayingTags = new Map<string, TagRecord>()
  private connections = 0
  private inbound = 0
  private outbound = 0
  private closing = 0

  private trimTimer: unknown
  private idleTimer: unknown
  private lastTrimAt: number | undefined
  private trimming: Promise<TrimReport> | undefined
  /** an automatic trim was due while another trim ran */
  private autoTrimPending = false
  private trims = 0
  private lastTrim: TrimReport | undefined
  private readonly closedBy: Record<CloseReason, number> = { trim: 0, idle: 0, limit: 0 }
  private readonly refused: Record<ConnectionDirection, number> = { inbound: 0, outbound: 0 }
  private storeWrites = 0
  private nodeListeners = 0
  private broadcaster: CleanupBroadcaster | undefined
  private started = false
  private readonly metrics?: { closed: CounterGroup, refused: CounterGroup, trims: Counter }

  constructor (components: WatermarkConnectionManagerComponents, init: WatermarkConnectionManagerInit = {}) {
    super()
    this.components = components
    this.log = components.logger.forComponent('holdfast:connection-manager')
    this.clock = init.clock ?? systemClock
    if (init.score != null && typeof init.score !== 'function') {
      throw new InvalidConfigError('score must be a function', 'score')
    }
    this.score = init.score ?? seedScore
    this.hysteresisInit = init.hysteresis
    const lowWater = init.lowWater ?? LOW_WATER
    const highWater = init.highWater ?? HIGH_WATER
    const settings: Settings = {
      lowWater,
      highWater,
      gracePeriod: init.gracePeriod ?? GRACE_PERIOD,
      silencePeriod: init.silencePeriod ?? SILENCE_PERIOD,
      maxInbound: init.maxInbound ?? Infinity,
      maxOutbound: init.maxOutbound ?? Infinity,
      idleTimeout: init.idleTimeout ?? IDLE_TIMEOUT,
      trimMode: init.trimMode ?? 'batch',
      hysteresis: init.hysteresis ?? defaultHysteresis(HYSTERESIS, lowWater, highWater)
    }
    const problem = checkSettings(settings)
    if (problem != null) {
      throw new InvalidConfigError(problem.message, problem.option)
    }
    this.settings = settings

    const metrics = components.metrics
    if (metrics != null) {
      this.metrics = {
        closed: metrics.registerCounterGroup('holdfast_connection_manager_closed_total', { label: 'reason', help: 'Connections the manager closed, by reason (trim, idle, limit)' }),
        refused: metrics.registerCounterGroup('holdfast_connection_manager_refused_total', { label: 'direction', help: 'Connections refused by maxInbound / maxOutbound' }),
        trims: metrics.registerCounter('holdfast_connection_manager_trims_total', { help: 'Trims run, automatic and manual' })
      }
      metrics.registerMetricGroup('holdfast_connection_manager_connections', {
        label: 'kind',
        help: 'Connections and peers tracked by the manager',
        calculate: () => ({ inbound: this.inbound, outbound: this.outbound, peers: this.peers.size, protected_peers: this.protections.size })
      })
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
    events.addEventListener('peer:update', this.onPeerUpdate)
    this.nodeListeners = LISTENED.length
    this.installGater()
    for (const connection of this.components.connectionManager.getConnections()) {
      this.track(connection)
    }
    for (const { peer } of this.protections.values()) {
      this.mirrorProtection(peer, true)
    }
    const builtInMax = this.components.connectionManager.getMaxConnections()
    if (builtInMax <= this.settings.highWater) {
      this.log('libp2p maxConnections (%d) is not above highWater (%d): libp2p\'s own pruner will trim before this manager does; see the README', builtInMax, this.settings.highWater)
    }
    this.maybeAutoTrim()
  }

  afterStart (): void {
    this.broadcaster = findService<CleanupBroadcaster>(this.components, CAPABILITIES.cleanupBroadcaster)
  }

  async stop (): Promise<void> {
    if (!this.started) {
      return
    }
    this.started = false
    const events = this.components.events
    events.removeEventListener('connection:open', this.onConnectionOpen)
    events.removeEventListener('connection:close', this.onConnectionClose)
    events.removeEventListener('peer:update', this.onPeerUpdate)
    this.nodeListeners = 0
    removeGaterLayer(this.components, GATE_OWNER)
    this.clearTimer('trimTimer')
    this.clearTimer('idleTimer')
    this.broadcaster = undefined
    // protections are the app's and survive a restart; their peer-store mirror does not, so a
    // persistent peer store never keeps a tag nobody will remove
    await Promise.all([...this.protections.values()].map(async ({ peer }) => this.mirrorProtection(peer, false)))
    await this.trimming?.catch(() => {})
    // the node closes the connections; we keep no record of them
    this.peers.clear()
    this.connections = this.inbound = this.outbound = this.closing = 0
  }

  // ---------------------------------------------------------------- protection and tags

  protect (peer: PeerId, tag: string): void {
    checkPeer(peer)
    checkName(tag, 'tag')
    const key = peer.toString()
    let protection = this.protections.get(key)
    if (protection == null) {
      protection = { peer, tags: new Set() }
      this.protections.set(key, protection)
      this.setProtected(key, true)
      if (this.started) {
        this.mirrorProtection(peer, true)
      }
    }
    protection.tags.add(tag)
  }

  unprotect (peer: PeerId, tag: string): boolean {
    checkPeer(peer)
    checkName(tag, 'tag')
    const key = peer.toString()
    const protection = this.protections.get(key)
    if (protection == null) {
      return false
    }
    protection.tags.delete(tag)
    if (protection.tags.size > 0) {
      return true
    }
    this.protections.delete(key)
    this.setProtected(key, false)
    if (this.started) {
      this.mirrorProtection(peer, false)
    }
    this.maybeAutoTrim()
    return false
  }

  private setProtected (key: string, on: boolean): void {
    const entry = this.peers.get(key)
    if (entry != null) {
      entry.protected = on
    }
  }

  isProtected (peer: PeerId, tag?: string): boolean {
    checkPeer(peer)
    const protection = this.protections.get(peer.toString())
    return protection != null && (tag === undefined || protection.tags.has(tag))
  }

  /** Tags live with the connected peer; tagging a peer that is not connected does nothing */
  tagPeer (peer: PeerId, tag: string, value: number): void {
    checkPeer(peer)
    checkName(tag, 'tag')
    checkValue(value, 'value')
    const entry = this.peers.get(peer.toString())
    if (entry == null) {
      this.log.trace('tagPeer %s on %p ignored: not connected', tag, peer)
      return
    }
    entry.tags ??= new Map()
    entry.tags.set(tag, value)
  }

  untagPeer (peer: PeerId, tag: string): void {
    checkPeer(peer)
    checkName(tag, 'tag')
    const entry = this.peers.get(peer.toString())
    entry?.tags?.delete(tag)
    if (entry?.tags?.size === 0) {
      entry.tags = undefined
    }
  }

  upsertTag (peer: PeerId, tag: string, update: (old: number) => number): void {
    checkPeer(peer)
    checkName(tag, 'tag')
    if (typeof update !== 'function') {
      throw new InvalidArgumentError('update must be a function', 'update')
    }
    const entry = this.peers.get(peer.toString())
    if (entry == null) {
      return
    }
    const value = update(entry.tags?.get(tag) ?? 0)
    checkValue(value, 'the value returned by update')
    entry.tags ??= new Map()
    entry.tags.set(tag, value)
  }

  registerDecayingTag (name: string, interval: number, decay: DecayFn, bump: BumpFn): DecayingTag {
    checkName(name, 'name')
    if (this.decayingTags.has(name)) {
      throw new InvalidArgumentError(`a decaying tag named "${name}" is already registered`, 'name')
    }
    if (typeof interval !== 'number' || !Number.isFinite(interval) || interval <= 0) {
      throw new InvalidArgumentError(`interval must be a positive number of ms, got ${String(interval)}`, 'interval')
    }
    if (typeof decay !== 'function' || typeof bump !== 'function') {
      throw new InvalidArgumentError('decay and bump must be functions', typeof decay !== 'function' ? 'decay' : 'bump')
    }
    const tag: DecayingTag = {
      name,
      interval,
      bump: (peer, delta) => { this.bumpDecaying(record, peer, delta) },
      remove: (peer) => {
        checkPeer(peer)
        this.dropDecaying(this.peers.get(peer.toString()), record)
      },
      close: () => {
        if (this.decayingTags.get(name) !== record) {
          return
        }
        this.decayingTags.delete(name)
        for (const entry of this.peers.values()) {
          this.dropDecaying(entry, record)
        }
      }
    }
    const record: TagRecord = { tag, origin: this.clock.now(), decay, bump }
    this.decayingTags.set(name, record)
    return tag
  }

  private bumpDecaying (record: TagRecord, peer: PeerId, delta: number): void {
    checkPeer(peer)
    checkValue(delta, 'delta')
    if (this.decayingTags.get(record.tag.name) !== record) {
      throw new InvalidArgumentError(`the decaying tag "${record.tag.name}" is closed`, 'tag')
    }
    const entry = this.peers.get(peer.toString())
    if (entry == null) {
      return
    }
    const now = this.clock.now()
    let state = entry.decaying?.get(record)
    if (state != null && !applyDecay(record, peer, state, now)) {
      state = undefined
    }
    state ??= { added: now, lastBump: now, value: 0, visited: now }
    const value = bumpValue(record, peer, state, delta, now)
    checkValue(value, 'the value returned by bump')
    state.value = value
    state.lastBump = now
    entry.decaying ??= new Map()
    entry.decaying.set(record, state)
  }

  private dropDecaying (entry: PeerEntry | undefined, record: TagRecord): void {
    if (entry?.decaying == null) {
      return
    }
    entry.decaying.delete(record)
    if (entry.decaying.size === 0) {
      entry.decaying = undefined
    }
  }

  // ---------------------------------------------------------------- trimming

  async trim (opts: AbortOptions = {}): Promise<TrimReport> {
    opts.signal?.throwIfAborted()
    return this.enqueueTrim('manual', opts)
  }

  explainTrim (): TrimPlan {
    const { peers, entries, tagSums, result, connections, target } = this.plan(() => {})
    return {
      mode: this.settings.trimMode,
      connections,
      target,
      close: inClosingOrder(peers, result).map(i => {
        const entry = entries[i]
        return { peer: entry.peer, score: peers.scores[i], parts: seedParts(tagSums[i], entry.outbound, streamsOf(entry)), connections: peers.connections[i], firstSeen: entry.firstSeen }
      }),
      after: result.after,
      shortfall: result.shortfall,
      protectedPeers: result.protectedPeers,
      gracePeers: result.gracePeers
    }
  }

  /**
   * Who a trim closes now: the connected peers as columns (row `i` is `entries[i]`), and the
   * rows to close in order, each handed to `onChoose` when `planTrim` chooses it. With the
   * default score nothing is allocated per peer: the score is summed straight from the entry,
   * first without the streams bonus (a lower bound), which `planTrim` completes only for the
   * peers it is about to choose. A trim then reads each closed peer's connections once, to score
   * it and to start closing it, rather than once cold in the plan and again in a close loop.
   */
  private plan (onChoose: (entry: PeerEntry, row: number) => void): { peers: PlanPeers, entries: PeerEntry[], tagSums: Float64Array, result: PlanResult, connections: number, target: number } {
    const now = this.clock.now()
    const size = this.peers.size
    const keys: string[] = []
    const seed = this.score === seedScore
    const peers: PlanPeers = { keys, scores: new Float64Array(size), firstSeen: new Float64Array(size), connections: new Uint32Array(size), status: new Uint8Array(size), bounded: seed ? new Uint8Array(size) : undefined }
    const entries: PeerEntry[] = []
    const tagSums = new Float64Array(size)
    const { gracePeriod } = this.settings
    let n = 0
    for (const entry of this.peers.values()) {
      if (entry.open === 0) {
        continue
      }
      const tags = this.tagSum(entry, now)
      tagSums[n] = tags
      if (peers.bounded !== undefined) {
        peers.scores[n] = tags + seedBonus(entry.outbound, 0)
        peers.bounded[n] = 1
      } else {
        peers.scores[n] = this.describe(entry, now).score
      }
      peers.firstSeen[n] = entry.firstSeen
      peers.connections[n] = entry.open
      peers.status[n] = entry.protected ? PROTECTED : now - entry.firstSeen < gracePeriod ? IN_GRACE : TRIMMABLE
      keys.push(entry.key)
      entries.push(entry)
      n++
    }
    if (n < size) {
      peers.scores = peers.scores.subarray(0, n)
      peers.firstSeen = peers.firstSeen.subarray(0, n)
      peers.connections = peers.connections.subarray(0, n)
      peers.status = peers.status.subarray(0, n)
      peers.bounded = peers.bounded?.subarray(0, n)
    }
    const connections = this.connections - this.closing
    const target = trimTarget(this.settings)
    const result = planTrim(peers, connections, target, {
      exactScore: row => peers.scores[row] + (hasStreams(entries[row]) ? seedBonus(0, 1) : 0),
      onChoose: row => { onChoose(entries[row], row) }
    })
    return { peers, entries, tagSums, result, connections, target }
  }

  /**
   * The sum of a peer's current tag values, decaying tags brought up to `now`. A `tagPeer` or
   * decaying tag with the name of a peer-store tag replaces it, as in `info().tags`.
   */
  private tagSum (entry: PeerEntry, now: number): number {
    if (entry.tags == null && entry.decaying == null) {
      return entry.storeSum
    }
    let sum = 0
    if (entry.decaying != null) {
      for (const [record, state] of entry.decaying) {
        if (applyDecay(record, entry.peer, state, now)) {
          sum += state.value
        } else {
          this.dropDecaying(entry, record)
        }
      }
    }
    if (entry.tags != null) {
      for (const [name, value] of entry.tags) {
        if (!this.hasDecaying(entry, name)) {
          sum += value
        }
      }
    }
    if (entry.storeTags != null) {
      for (const name in entry.storeTags) {
        if (entry.tags?.has(name) !== true && !this.hasDecaying(entry, name)) {
          sum += entry.storeTags[name]
        }
      }
    }
    return sum
  }

  private hasDecaying (entry: PeerEntry, name: string): boolean {
    if (entry.decaying == null) {
      return false
    }
    const record = this.decayingTags.get(name)
    return record != null && entry.decaying.has(record)
  }

  /** Trims run one at a time: a trim planned while another is closing would count those twice */
  private async enqueueTrim (trigger: TrimReport['trigger'], opts: AbortOptions = {}): Promise<TrimReport> {
    const previous = this.trimming ?? Promise.resolve()
    const run = previous.catch(() => {}).then(async () => this.runTrim(trigger, opts))
    this.trimming = run
    try {
      return await run
    } finally {
      if (this.trimming === run) {
        this.trimming = undefined
        if (this.autoTrimPending) {
          this.autoTrimPending = false
          this.maybeAutoTrim()
        }
      }
    }
  }

  private async runTrim (trigger: TrimReport['trigger'], opts: AbortOptions): Promise<TrimReport> {
    opts.signal?.throwIfAborted()
    const startedAt = this.clock.now()
    this.lastTrimAt = startedAt
    this.clearTimer('trimTimer')
    this.emit('trim:started', { connections: this.connections - this.closing })
    const closes = new PendingCloses()
    // each close starts as its peer is chosen; the peers are announced, in closing order, once
    // the closes have settled, so ordering them never delays a close
    const started = new Uint32Array(this.peers.size)
    const { peers, entries, result, connections, target } = this.plan((entry, row) => {
      started[row] = this.startClosing(entry, closes)
    })
    if (closes.started > 0) {
      this.countClosed('trim', closes.started)
    }
    await closes.settled()

    const closed: PeerId[] = []
    const announce = this.announces('connection:closed-by-manager')
    for (const row of inClosingOrder(peers, result)) {
      const { peer } = entries[row]
      closed.push(peer)
      if (announce && started[row] > 0) {
        this.emit('connection:closed-by-manager', { peer, reason: 'trim' })
      }
    }

    const report: TrimReport = {
      trigger,
      mode: this.settings.trimMode,
      before: connections,
      after: this.connections - this.closing,
      target,
      closed,
      closedConnections: closes.started,
      shortfall: result.shortfall,
      durationMs: this.clock.now() - startedAt
    }
    this.trims++
    this.lastTrim = report
    this.metrics?.trims.increment()
    this.log('%s trim closed %d peers (%d connections): %d -> %d, target %d, shortfall %d', trigger, closed.length, report.closedConnections, report.before, report.after, report.target, report.shortfall)
    this.emit('trim:completed', { closed, before: report.before, after: report.after, durationMs: report.durationMs, shortfall: report.shortfall })
    if (result.gracePeers > 0) {
      this.scheduleGraceRecheck()
    }
    return report
  }

  /** Starts an automatic trim now, or arms the one timer for when the silence period ends */
  private maybeAutoTrim (): void {
    if (!this.started) {
      return
    }
    const due = autoTrimDue(this.connections - this.closing, this.settings.highWater, this.clock.now(), this.lastTrimAt, this.settings.silencePeriod)
    if (due === 'never') {
      this.clearTimer('trimTimer')
      return
    }
    if (due !== 'now') {
      this.armTrimTimer(due)
      return
    }
    if (this.trimming != null) {
      this.autoTrimPending = true
      return
    }
    this.enqueueTrim('auto').catch(err => { this.log.error('automatic trim failed - %e', err) })
  }

  /** Still above highWater because of peers in grace: look again when the first grace ends */
  private scheduleGraceRecheck (): void {
    if (this.connections - this.closing <= this.settings.highWater) {
      return
    }
    const now = this.clock.now()
    let firstGraceEnd = Infinity
    for (const entry of this.peers.values()) {
      if (entry.firstSeen + this.settings.gracePeriod > now && !entry.protected) {
        firstGraceEnd = Math.min(firstGraceEnd, entry.firstSeen + this.settings.gracePeriod)
      }
    }
    if (firstGraceEnd !== Infinity) {
      this.armTrimTimer(Math.max(firstGraceEnd - now, this.settings.silencePeriod))
    }
  }

  private armTrimTimer (ms: number): void {
    if (this.trimTimer !== undefined) {
      return
    }
    this.trimTimer = this.clock.setTimeout(() => {
      this.trimTimer = undefined
      this.maybeAutoTrim()
    }, ms)
  }

  // ---------------------------------------------------------------- limits

  setLimits (limits: Partial<Limits>): void {
    if (limits == null || typeof limits !== 'object') {
      throw new InvalidArgumentError('limits must be an object', 'limits')
    }
    const next: Settings = { ...this.settings, ...limits }
    next.hysteresis = this.hysteresisInit ?? defaultHysteresis(HYSTERESIS, next.lowWater, next.highWater)
    const problem = checkSettings(next)
    if (problem != null) {
      throw new InvalidArgumentError(problem.message, problem.option)
    }
    const idleChanged = next.idleTimeout !== this.settings.idleTimeout
    this.settings = next
    if (idleChanged) {
      this.clearTimer('idleTimer')
      this.armIdleSweep()
    }
    this.clearTimer('trimTimer')
    this.maybeAutoTrim()
  }

  /**
   * Chains the per-direction limits in front of the node's gater: an inbound connection over
   * maxInbound is refused after the security handshake and before the muxer is negotiated, so
   * no stream can ever be opened on it; a dial over maxOutbound rejects with
   * ConnectionLimitError before anything is dialed. The node's own gater is not modified: ours
   * is a layer of the node's shared gater chain, taken out on stop.
   */
  private installGater (): void {
    addGaterLayer(this.components, GATE_OWNER, {
      denyInboundEncryptedConnection: (peer) => this.refuse('inbound', peer),
      denyDialPeer: (peer) => {
        if (this.refuse('outbound', peer)) {
          throw new ConnectionLimitError(`maxOutbound (${this.settings.maxOutbound}) reached`)
        }
        return false
      }
    })
  }

  /** True (and counted, and announced) when a new connection in that direction goes over its limit */
  private refuse (direction: ConnectionDirection, peer: PeerId): boolean {
    const current = direction === 'inbound' ? this.inbound : this.outbound
    const max = direction === 'inbound' ? this.settings.maxInbound : this.settings.maxOutbound
    if (!overLimit(current, max, this.protections.has(peer.toString()))) {
      return false
    }
    this.refused[direction]++
    this.metrics?.refused.increment({ [direction]: true })
    this.log('%s connection with %p refused: max%s %d reached', direction, peer, direction === 'inbound' ? 'Inbound' : 'Outbound', max)
    this.emit('limit:exceeded', { direction, peer })
    return true
  }

  // ---------------------------------------------------------------- connection tracking

  private readonly onConnectionOpen = (evt: Libp2pEvents['connection:open']): void => {
    try {
      const connection = evt.detail
      if (connection.status !== 'open') {
        return
      }
      const entry = this.track(connection)
      // concurrent upgrades can pass the gater together: the one that lands over the limit goes
      if (entry != null) {
        const direction = connection.direction
        const count = direction === 'inbound' ? this.inbound : this.outbound
        const max = direction === 'inbound' ? this.settings.maxInbound : this.settings.maxOutbound
        if (overLimit(count - 1, max, entry.protected) && this.refuse(direction, connection.remotePeer)) {
          const conn = entry.conns[indexOfConnection(entry.conns, connection)]
          if (conn != null) {
            this.closeConnection(entry, conn, noop)
            this.announceClose(entry.peer, 'limit', 1)
          }
          return
        }
      }
      this.maybeAutoTrim()
    } catch (err) {
      this.log.error('connection:open handler failed - %e', err)
    }
  }

  private readonly onConnectionClose = (evt: Libp2pEvents['connection:close']): void => {
    try {
      this.untrack(evt.detail)
    } catch (err) {
      this.log.error('connection:close handler failed - %e', err)
    }
  }

  private readonly onPeerUpdate = (evt: Libp2pEvents['peer:update']): void => {
    const entry = this.peers.get(evt.detail.peer.id.toString())
    if (entry != null) {
      setStoreTags(entry, evt.detail.peer)
    }
  }

  /** Records an open connection; returns its peer entry, or undefined if it was known already */
  private track (connection: Connection): PeerEntry | undefined {
    const key = connection.remotePeer.toString()
    let entry = this.peers.get(key)
    if (entry != null && indexOfConnection(entry.conns, connection) !== -1) {
      return undefined
    }
    const now = this.clock.now()
    if (entry == null) {
      entry = { peer: connection.remotePeer, key, firstSeen: now, conns: [], open: 0, protected: this.protections.has(key), inbound: 0, outbound: 0, tags: undefined, decaying: undefined, storeTags: undefined, storeSum: 0 }
      this.peers.set(key, entry)
      this.loadStoreTags(entry)
    }
    entry.conns = [...entry.conns, { connection, idleSince: connection.streams.length === 0 ? now : undefined, closing: false }]
    entry.open++
    this.connections++
    if (connection.direction === 'inbound') {
      entry.inbound++
      this.inbound++
    } else {
      entry.outbound++
      this.outbound++
    }
    this.armIdleSweep()
    return entry
  }

  private untrack (connection: Connection): void {
    const key = connection.remotePeer.toString()
    const entry = this.peers.get(key)
    const index = entry == null ? -1 : indexOfConnection(entry.conns, connection)
    if (entry == null || index === -1) {
      return
    }
    const conn = entry.conns[index]
    entry.conns = entry.conns.toSpliced(index, 1)
    this.connections--
    if (conn.closing) {
      this.closing--
    } else {
      entry.open--
    }
    if (connection.direction === 'inbound') {
      entry.inbound--
      this.inbound--
    } else {
      entry.outbound--
      this.outbound--
    }
    if (entry.conns.length === 0) {
      this.peers.delete(key)
    }
    if (this.peers.size === 0) {
      this.clearTimer('idleTimer')
    }
    if (this.connections - this.closing <= this.settings.highWater) {
      this.clearTimer('trimTimer')
    }
  }

  /** Seeds the peer-store tags of a new peer; later changes arrive as peer:update */
  private loadStoreTags (entry: PeerEntry): void {
    this.components.peerStore.get(entry.peer).then(peer => {
      if (this.peers.get(entry.key) === entry && entry.storeTags === undefined) {
        setStoreTags(entry, peer)
      }
    }, () => {})
  }

  /** Starts closing every connection of a peer not already closing (counted in `closes`); returns how many */
  private startClosing (entry: PeerEntry, closes: PendingCloses): number {
    const { conns } = entry
    let count = 0
    for (let i = 0; i < conns.length; i++) {
      if (!conns[i].closing) {
        this.closeConnection(entry, conns[i], closes.settle)
        count++
      }
    }
    closes.add(count)
    return count
  }

  /** Starts closing a connection (aborting it if the close fails); `settled` runs when either is done */
  private closeConnection (entry: PeerEntry, conn: ConnEntry, settled: () => void): void {
    conn.closing = true
    entry.open--
    this.closing++
    const { connection } = conn
    connection.close().then(settled, (err: Error) => {
      try {
        connection.abort(err)
      } catch (abortErr) {
        this.log.error('aborting %p after its close failed threw - %e', entry.peer, abortErr)
      }
      settled()
    })
  }

  private announceClose (peer: PeerId, reason: CloseReason, connections: number): void {
    this.countClosed(reason, connections)
    this.emit('connection:closed-by-manager', { peer, reason })
  }

  private countClosed (reason: CloseReason, connections: number): void {
    this.closedBy[reason] += connections
    this.metrics?.closed.increment({ [reason]: connections })
  }

  // ---------------------------------------------------------------- idle

  /** One sweep timer for all connections, running only while there are connections */
  private armIdleSweep (): void {
    if (this.idleTimer !== undefined || !this.started || this.peers.size === 0 || this.settings.idleTimeout === Infinity) {
      return
    }
    this.idleTimer = this.clock.setTimeout(() => {
      this.idleTimer = undefined
      this.sweepIdle()
      this.armIdleSweep()
    }, this.settings.idleTimeout / IDLE_SWEEPS_PER_TIMEOUT)
  }

  private sweepIdle (): void {
    const now = this.clock.now()
    for (const entry of this.peers.values()) {
      if (entry.protected) {
        continue
      }
      for (const conn of entry.conns) {
        if (conn.closing) {
          continue
        }
        if (conn.connection.streams.length > 0) {
          conn.idleSince = undefined
        } else if (conn.idleSince === undefined) {
          conn.idleSince = now
        } else if (isIdle(conn.idleSince, now, this.settings.idleTimeout)) {
          this.closeConnection(entry, conn, noop)
          this.announceClose(entry.peer, 'idle', 1)
        }
      }
    }
  }

  // ---------------------------------------------------------------- introspection

  info (peer: PeerId): PeerConnInfo | undefined {
    checkPeer(peer)
    const entry = this.peers.get(peer.toString())
    return entry == null ? undefined : this.describe(entry, this.clock.now())
  }

  stats (): ConnManagerStats {
    return {
      connections: this.connections,
      peers: this.peers.size,
      inbound: this.inbound,
      outbound: this.outbound,
      protectedPeers: this.protections.size,
      trims: this.trims,
      lastTrim: this.lastTrim,
      closed: { ...this.closedBy },
      refused: { ...this.refused }
    }
  }

  internalSizes (): InternalSizes {
    let connections = 0
    let decayingValues = 0
    for (const entry of this.peers.values()) {
      connections += entry.conns.length
      decayingValues += entry.decaying?.size ?? 0
    }
    return {
      peers: this.peers.size,
      connections,
      closing: this.closing,
      decayingValues,
      timers: (this.trimTimer === undefined ? 0 : 1) + (this.idleTimer === undefined ? 0 : 1),
      listeners: 0,
      nodeListeners: this.nodeListeners,
      gater: gaterLayers(this.components).includes(GATE_OWNER) ? 1 : 0,
      storeWrites: this.storeWrites,
      protected: this.protections.size,
      decayingTags: this.decayingTags.size
    }
  }

  /** The score input and score of a peer, decaying tags brought up to `now` */
  private describe (entry: PeerEntry, now: number): PeerConnInfo {
    const tags: Record<string, number> = { ...entry.storeTags }
    if (entry.tags != null) {
      for (const [name, value] of entry.tags) {
        tags[name] = value
      }
    }
    if (entry.decaying != null) {
      for (const [record, state] of entry.decaying) {
        if (applyDecay(record, entry.peer, state, now)) {
          tags[record.tag.name] = state.value
        } else {
          this.dropDecaying(entry, record)
        }
      }
    }
    const input: ScoreInput = {
      peer: entry.peer,
      tags,
      protections: [...(this.protections.get(entry.key)?.tags ?? [])],
      firstSeen: entry.firstSeen,
      inGrace: now - entry.firstSeen < this.settings.gracePeriod,
      connections: entry.conns.length,
      inbound: entry.inbound,
      outbound: entry.outbound,
      streams: streamsOf(entry)
    }
    const score = this.score(input)
    return { ...input, score: Number.isFinite(score) ? score : 0 }
  }

  // ---------------------------------------------------------------- helpers

  /** Whether an event reaches anyone (a listener or the broadcaster), so a trim of thousands of peers builds none for nobody */
  private announces (type: ConnectionManagerEventType): boolean {
    return this.broadcaster != null || this.listenerCount(type) > 0
  }

  private emit<K extends ConnectionManagerEventType>(type: K, detail: HoldfastEvents[K]): void {
    if (this.listenerCount(type) > 0) {
      this.safeDispatchEvent(type, { detail })
    }
    try {
      this.broadcaster?.publish(type, detail)
    } catch (err) {
      this.log.error('publishing %s through the broadcaster failed - %e', type, err)
    }
  }

  /** Mirrors a protection as a high peer-store tag, so libp2p's own pruner keeps the peer last */
  private mirrorProtection (peer: PeerId, on: boolean): Promise<void> {
    this.storeWrites++
    return this.components.peerStore.merge(peer, { tags: { [PROTECTED_STORE_TAG]: on ? { value: PROTECTED_STORE_TAG_VALUE } : undefined } })
      .then(() => {}, err => { this.log.error('could not %s the protection tag of %p - %e', on ? 'set' : 'remove', peer, err) })
      .finally(() => { this.storeWrites-- })
  }

  private clearTimer (which: 'trimTimer' | 'idleTimer'): void {
    if (this[which] !== undefined) {
      this.clock.clearTimeout(this[which])
      this[which] = undefined
    }
  }
}

/**
 * The closes a trim waits for: one counter and one promise, where `Promise.all` over thousands
 * of closes would allocate a promise and a resolver per connection.
 */
class PendingCloses {
  /** closes started */
  started = 0
  private pending = 0
  private resolve: (() => void) | undefined

  add (count: number): void {
    this.started += count
    this.pending += count
  }

  /** called once per close when it has settled */
  readonly settle = (): void => {
    if (--this.pending === 0) {
      this.resolve?.()
    }
  }

  async settled (): Promise<void> {
    if (this.pending > 0) {
      await new Promise<void>(resolve => { this.resolve = resolve })
    }
  }
}

function noop (): void {}

function inClosingOrder (peers: PlanPeers, result: PlanResult): number[] {
  return result.everyTrimmable ? sortClosing(peers, result.close) : result.close
}

function indexOfConnection (conns: readonly ConnEntry[], connection: Connection): number {
  for (let i = 0; i < conns.length; i++) {
    if (conns[i].connection === connection) {
      return i
    }
  }
  return -1
}

/** `streamsOf(entry) > 0` without reading every connection's streams */
function hasStreams (entry: PeerEntry): boolean {
  const { conns } = entry
  for (let i = 0; i < conns.length; i++) {
    if (conns[i].connection.streams.length > 0) {
      return true
    }
  }
  return false
}

function streamsOf (entry: PeerEntry): number {
  let streams = 0
  for (const conn of entry.conns) {
    streams += conn.connection.streams.length
  }
  return streams
}

function setStoreTags (entry: PeerEntry, peer: Pick<Peer, 'tags'>): void {
  let tags: Record<string, number> | undefined
  let sum = 0
  for (const [name, tag] of peer.tags) {
    if (name !== PROTECTED_STORE_TAG) {
      tags ??= {}
      tags[name] = tag.value
      sum += tag.value
    }
  }
  entry.storeTags = tags
  entry.storeSum = sum
}

function checkPeer (peer: unknown): asserts peer is PeerId {
  if (!isPeerId(peer)) {
    throw new InvalidArgumentError('peer must be a PeerId', 'peer')
  }
}

function checkName (name: unknown, argument: string): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(`${argument} must be a non-empty string`, argument)
  }
}

function checkValue (value: unknown, argument: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidArgumentError(`${argument} must be a finite number, got ${String(value)}`, argument)
  }
}
