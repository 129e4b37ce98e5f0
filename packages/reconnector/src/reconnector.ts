import { CAPABILITIES, findService, InvalidArgumentError, InvalidConfigError, registerService, systemClock } from '@holdfast/interface'
import { isPeerId, serviceCapabilities } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import { PARKED_TAG_PREFIX, defaults } from './constants.ts'
import { DeadlineHeap } from './deadline-heap.ts'
import { backoffDelay, configProblem, crossingYield, dropParkedTags, hasKeepAliveTag, nextDeadline, parkKeepAliveTags, restoreKeepAliveTags, transition } from './policy.ts'
import type { HeapItem } from './deadline-heap.ts'
import type { Reconnector as ReconnectorInterface, ReconnectorComponents, ReconnectorEvents, ReconnectorEventType, ReconnectorInit, ResumeOptions } from './index.ts'
import type { Input, ReconnectConfig, RemovalReason, TagPlan } from './policy.ts'
import type { CleanupBroadcaster, Clock, HoldfastEvents, InternalSizes, WatermarkConnectionManager } from '@holdfast/interface'
import type { AbortOptions, CounterGroup, Logger, PeerId, PeerUpdate, Startable } from '@libp2p/interface'

/** What the reconnector needs of the holdfast connection manager, when the node has one */
type DialFn = (peer: PeerId, options: AbortOptions) => Promise<unknown>

interface InFlightDial {
  readonly controller: AbortController
  readonly done: Promise<void>
}

/** One watched peer: connected, or lost and waiting in the deadline heap */
interface PeerEntry extends HeapItem {
  readonly peer: PeerId
  readonly key: string
  state: 'connected' | 'held' | 'reconnecting'
  disconnectedAt: number
  windowEndsAt: number
  holdDeadline: number
  /** Infinity while a dial is in flight or none is scheduled (paused) */
  nextAttemptAt: number
  /** failed attempts that count toward maxAttempts */
  attempts: number
  /** dials made in this outage, reported by `peer:recovered` */
  dials: number
  dial?: InFlightDial
}

export class Reconnector extends TypedEventEmitter<ReconnectorEvents> implements ReconnectorInterface, Startable {
  readonly [Symbol.toStringTag] = '@holdfast/reconnector'
  readonly [serviceCapabilities]: string[] = [CAPABILITIES.reconnector]

  private readonly components: ReconnectorComponents
  private readonly log: Logger
  private readonly clock: Clock
  private readonly random: () => number
  private readonly config: ReconnectConfig
  private readonly watchPredicate?: (peer: PeerId) => boolean
  private readonly dialHook?: DialFn
  private readonly entries = new Map<string, PeerEntry>()
  private readonly heap = new DeadlineHeap<PeerEntry>()
  /** peers watched with `watch(peer)`: the app's list, kept across stop/start */
  private readonly explicit = new Map<string, PeerId>()
  private readonly tagWrites = new Set<Promise<void>>()
  private readonly metrics?: { dials: CounterGroup, removed: CounterGroup, recovered: CounterGroup }
  private broadcaster?: CleanupBroadcaster
  private protection?: WatermarkConnectionManager
  private dialFn?: DialFn
  /** the one clock timer, armed for the top of the heap */
  private timer?: unknown
  private timerAt?: number
  private paused = false
  private pausedAt = 0
  private started = false
  private nodeListeners = 0
  /** the entry whose removal is being reported, so `state()` says `removed` meanwhile */
  private removing?: PeerEntry

  constructor (components: ReconnectorComponents, init: ReconnectorInit = {}) {
    super()
    this.components = components
    this.log = components.logger.forComponent('holdfast:reconnector')
    this.config = configOf(init)
    const problem = configProblem(this.config)
    if (problem !== undefined) {
      throw new InvalidConfigError(problem.message, problem.option)
    }
    for (const option of ['watch', 'dial', 'random'] as const) {
      if (init[option] !== undefined && typeof init[option] !== 'function') {
        throw new InvalidConfigError(`${option} must be a function`, option)
      }
    }
    const clock = init.clock ?? systemClock
    if (typeof clock?.now !== 'function' || typeof clock.setTimeout !== 'function' || typeof clock.clearTimeout !== 'function') {
      throw new InvalidConfigError('clock must have now, setTimeout and clearTimeout', 'clock')
    }
    this.clock = clock
    this.random = init.random ?? Math.random
    this.watchPredicate = init.watch
    this.dialHook = init.dial

    if (components.metrics != null) {
      this.metrics = {
        dials: components.metrics.registerCounterGroup('holdfast_reconnector_dials_total', { label: 'outcome', help: 'Reconnect attempts, by outcome' }),
        removed: components.metrics.registerCounterGroup('holdfast_reconnector_removed_total', { label: 'reason', help: 'Peers given up on, by reason' }),
        recovered: components.metrics.registerCounterGroup('holdfast_reconnector_recovered_total', { label: 'how', help: 'Held peers that came back, by how' })
      }
      components.metrics.registerMetric('holdfast_reconnector_held_peers', { help: 'Peers held or reconnecting now', calculate: () => this.heap.size })
    }
    registerService(components, this)
  }

  // ---------------------------------------------------------------- lifecycle

  async start (): Promise<void> {
    if (this.started) {
      return
    }
    this.started = true
    this.broadcaster = findService<CleanupBroadcaster>(this.components, CAPABILITIES.cleanupBroadcaster)
    this.protection = findService<WatermarkConnectionManager>(this.components, CAPABILITIES.connectionManager)
    const broadcaster = this.broadcaster
    const connectionManager = this.components.connectionManager
    this.dialFn = this.dialHook ??
      (broadcaster != null ? async (peer, options) => broadcaster.dial(peer, options) : async (peer, options) => connectionManager.openConnection(peer, options))

    const events = this.components.events
    events.addEventListener('peer:connect', this.onPeerConnect)
    events.addEventListener('peer:disconnect', this.onPeerDisconnect)
    events.addEventListener('peer:update', this.onPeerUpdate)
    this.nodeListeners = 3

    // tags parked by a run that ended without `stop()` (a crash) go back first
    await this.restoreLeftoverParkedTags()
    // peers connected before we started
    for (const connection of connectionManager.getConnections()) {
      if (!this.entries.has(connection.remotePeer.toString()) && this.isWatched(connection.remotePeer)) {
        this.adopt(connection.remotePeer)
      }
    }
  }

  /**
   * Parked tags go back under their own names while the peer store is still running. The node
   * listeners go first, or the restored tags' `peer:update` would park them again.
   */
  async beforeStop (): Promise<void> {
    this.removeNodeListeners()
    for (const entry of this.entries.values()) {
      this.retag(entry.peer, restoreKeepAliveTags)
    }
    await this.tagWritesSettled()
  }

  async stop (): Promise<void> {
    if (!this.started) {
      return
    }
    this.started = false
    this.removeNodeListeners()
    for (const entry of this.entries.values()) {
      this.abortDial(entry)
    }
    this.entries.clear()
    this.heap.clear()
    this.paused = false
    this.rearm()
    await this.tagWritesSettled()
  }

  private removeNodeListeners (): void {
    const events = this.components.events
    events.removeEventListener('peer:connect', this.onPeerConnect)
    events.removeEventListener('peer:disconnect', this.onPeerDisconnect)
    events.removeEventListener('peer:update', this.onPeerUpdate)
    this.nodeListeners = 0
  }

  // ---------------------------------------------------------------- the API

  state (peer: PeerId): 'connected' | 'held' | 'reconnecting' | 'removed' | undefined {
    const key = checkPeer(peer).toString()
    if (this.removing?.key === key) {
      return 'removed'
    }
    return this.entries.get(key)?.state
  }

  watch (peer: PeerId): void {
    const key = checkPeer(peer).toString()
    this.explicit.set(key, peer)
    if (this.started && !this.entries.has(key) && this.isConnected(peer)) {
      this.adopt(peer)
    }
  }

  unwatch (peer: PeerId): void {
    const key = checkPeer(peer).toString()
    this.explicit.delete(key)
    const entry = this.entries.get(key)
    if (entry != null && !this.isWatched(peer)) {
      this.apply(entry, { type: 'unwatched' })
    }
  }

  held (): PeerId[] {
    return [...this.entries.values()].filter(isLost).map(entry => entry.peer)
  }

  pause (): void {
    if (this.paused) {
      return
    }
    this.paused = true
    this.pausedAt = this.clock.now()
    this.rearm()
    this.log('paused with %d held peers', this.heap.size)
  }

  resume (opts: ResumeOptions = {}): void {
    if (opts == null || typeof opts !== 'object' || (opts.resetBackoff !== undefined && typeof opts.resetBackoff !== 'boolean')) {
      throw new InvalidArgumentError('opts must be { resetBackoff?: boolean }', 'opts')
    }
    if (!this.paused) {
      return
    }
    const now = this.clock.now()
    const scheduled: Array<[PeerEntry, number]> = []
    for (const entry of this.entries.values()) {
      if (!isLost(entry)) {
        continue
      }
      // the hold does not run while the network is down
      entry.holdDeadline += now - Math.max(this.pausedAt, entry.disconnectedAt)
      if (opts.resetBackoff === true) {
        entry.attempts = 0
      }
      entry.state = transition(entry.state, { type: 'retry-now' }).state as PeerEntry['state']
      if (entry.dial == null) {
        // prompt, and spread over the first delay's jitter band so a relay is not hit by a storm
        const delayMs = backoffDelay(0, this.config, this.random())
        entry.nextAttemptAt = now + delayMs
        scheduled.push([entry, delayMs])
      }
      entry.due = nextDeadline(entry)?.at ?? entry.holdDeadline
    }
    this.paused = false
    this.heap.heapify()
    this.rearm()
    this.log('resumed, %d held peers rescheduled', scheduled.length)
    for (const [entry, delayMs] of scheduled) {
      this.emit('peer:reconnecting', { peer: entry.peer, attempt: entry.attempts + 1, delayMs })
    }
  }

  async reconnectNow (peer?: PeerId): Promise<void> {
    const targets = peer === undefined
      ? [...this.entries.values()].filter(isLost)
      : [this.entries.get(checkPeer(peer).toString())].filter(entry => entry != null && isLost(entry)) as PeerEntry[]
    await Promise.all(targets.map(async entry => {
      if (entry.dial != null) {
        return entry.dial.done
      }
      entry.state = 'reconnecting'
      this.emit('peer:reconnecting', { peer: entry.peer, attempt: entry.attempts + 1, delayMs: 0 })
      // a listener may have settled the peer meanwhile
      return this.entries.get(entry.key) === entry && isLost(entry) ? this.attempt(entry) : undefined
    }))
  }

  internalSizes (): InternalSizes {
    let dials = 0
    for (const entry of this.entries.values()) {
      dials += entry.dial == null ? 0 : 1
    }
    return {
      peers: this.entries.size,
      held: this.heap.size,
      timers: this.timer === undefined ? 0 : 1,
      listeners: 0,
      dials,
      tagWrites: this.tagWrites.size,
      watched: this.explicit.size,
      nodeListeners: this.nodeListeners
    }
  }

  // ---------------------------------------------------------------- libp2p events

  private readonly onPeerConnect = (event: CustomEvent<PeerId>): void => {
    this.guard('peer:connect', () => {
      const peer = event.detail
      const entry = this.entries.get(peer.toString())
      if (entry == null) {
        if (this.isWatched(peer)) {
          this.adopt(peer)
        }
        return
      }
      this.apply(entry, { type: 'connected' })
    })
  }

  private readonly onPeerDisconnect = (event: CustomEvent<PeerId>): void => {
    this.guard('peer:disconnect', () => {
      const peer = event.detail
      // a new connection may already have replaced the last one
      if (this.isConnected(peer)) {
        return
      }
      const entry = this.entries.get(peer.toString()) ?? (this.isWatched(peer) ? this.adopt(peer) : undefined)
      if (entry != null) {
        this.apply(entry, { type: 'disconnected' })
      }
    })
  }

  /** Tags changed: a protection may have started or ended, or someone tagged a watched peer keep-alive */
  private readonly onPeerUpdate = (event: CustomEvent<PeerUpdate>): void => {
    this.guard('peer:update', () => {
      const { id, tags } = event.detail.peer
      const entry = this.entries.get(id.toString())
      if (entry == null) {
        if (this.isConnected(id) && this.isWatched(id)) {
          this.adopt(id)
        }
        return
      }
      if (!this.isWatched(id)) {
        this.apply(entry, { type: 'unwatched' })
      } else if (hasKeepAliveTag(tags)) {
        this.retag(id, parkKeepAliveTags)
      }
    })
  }

  /** A throwing listener would become an uncaughtException in libp2p's event target */
  private guard (what: string, fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.log.error('handling %s failed - %e', what, err)
    }
  }

  // ---------------------------------------------------------------- the state machine

  /** Starts watching a connected peer: the app hears `peer:online` once */
  private adopt (peer: PeerId): PeerEntry {
    const entry: PeerEntry = {
      peer,
      key: peer.toString(),
      state: 'connected',
      disconnectedAt: 0,
      windowEndsAt: 0,
      holdDeadline: 0,
      nextAttemptAt: Number.POSITIVE_INFINITY,
      attempts: 0,
      dials: 0,
      dial: undefined,
      due: 0,
      heapIndex: -1
    }
    this.entries.set(entry.key, entry)
    this.retag(peer, parkKeepAliveTags)
    this.emit('peer:online', { peer })
    return entry
  }

  /** Applies one input to a peer and carries out what the policy decided */
  private apply (entry: PeerEntry, input: Input): void {
    const before = entry.state
    const next = transition(before, input)
    const now = this.clock.now()
    if (next.removed !== undefined || next.state === 'removed') {
      this.remove(entry, next.removed)
      return
    }
    entry.state = next.state
    if (next.recovered === true) {
      this.recovered(entry, now)
      return
    }
    if (before === 'connected' && next.state === 'held') {
      entry.disconnectedAt = now
      entry.windowEndsAt = now + this.config.toleranceWindow
      entry.holdDeadline = now + this.config.stateHoldTime
      entry.nextAttemptAt = Number.POSITIVE_INFINITY
      entry.attempts = 0
      entry.dials = 0
      this.reschedule(entry)
      this.emit('peer:held', { peer: entry.peer })
    } else if (before === 'held' && next.state === 'reconnecting') {
      const yieldMs = input.type === 'window-passed' ? crossingYield(this.components.peerId.toString(), entry.key, this.config.crossingDelay) : 0
      this.scheduleAttempt(entry, now, yieldMs)
    }
  }

  private recovered (entry: PeerEntry, now: number): void {
    // an attempt of ours still in flight is left to finish: aborting it could close the
    // connection it just opened
    const how = entry.dial == null ? 'returned' : 'reconnected'
    const detail = { peer: entry.peer, downtimeMs: now - entry.disconnectedAt, attempts: entry.dials, how } as const
    entry.attempts = 0
    entry.dials = 0
    entry.nextAttemptAt = Number.POSITIVE_INFINITY
    this.heap.delete(entry)
    this.rearm()
    this.metrics?.recovered.increment({ [how]: true })
    this.emit('peer:recovered', detail)
  }

  /** Forgets the peer; with a reason, the app is told it is offline and the broadcaster cleans it up */
  private remove (entry: PeerEntry, reason: RemovalReason | undefined): void {
    this.entries.delete(entry.key)
    this.heap.delete(entry)
    this.abortDial(entry)
    this.rearm()
    // giving up drops the parked keep-alive tags, as libp2p's own reconnect does when it gives up
    this.retag(entry.peer, reason === 'attempts-exhausted' || reason === 'hold-expired' ? dropParkedTags : restoreKeepAliveTags)
    if (reason === undefined) {
      return
    }
    this.metrics?.removed.increment({ [reason]: true })
    this.log('removed %p: %s', entry.peer, reason)
    this.removing = entry
    try {
      this.emit('peer:removed', { peer: entry.peer, reason })
      this.emit('peer:offline', { peer: entry.peer })
    } finally {
      this.removing = undefined
    }
  }

  private scheduleAttempt (entry: PeerEntry, from: number, extraMs = 0): void {
    const delayMs = backoffDelay(entry.attempts, this.config, this.random()) + extraMs
    entry.nextAttemptAt = from + delayMs
    this.reschedule(entry)
    this.emit('peer:reconnecting', { peer: entry.peer, attempt: entry.attempts + 1, delayMs })
  }

  /** One dial; its outcome goes through the state machine. Never rejects. */
  private attempt (entry: PeerEntry): Promise<void> {
    if (entry.dial != null) {
      return entry.dial.done
    }
    const controller = new AbortController()
    entry.nextAttemptAt = Number.POSITIVE_INFINITY
    entry.dials++
    this.reschedule(entry)
    let dialing: Promise<unknown>
    try {
      // called synchronously: the dial starts at the exact deadline of the clock
      dialing = (this.dialFn as DialFn)(entry.peer, { signal: controller.signal })
    } catch (err) {
      dialing = Promise.reject(err)
    }
    const done = Promise.resolve(dialing).then(() => {
      if (this.settleDial(entry, controller, 'success') && isLost(entry)) {
        // the dial hook connected without libp2p reporting a new peer:connect
        this.apply(entry, { type: 'connected' })
      }
    }, (err: Error) => {
      if (!this.settleDial(entry, controller, 'failure') || !isLost(entry)) {
        return
      }
      this.log('attempt %d to %p failed - %e', entry.dials, entry.peer, err)
      if (this.paused) {
        // the network is down: this failure says nothing about the peer and is not counted
        return
      }
      entry.attempts++
      const next = transition(entry.state, { type: 'attempt-failed', attempts: entry.attempts, maxAttempts: this.config.maxAttempts })
      if (next.removed !== undefined) {
        this.remove(entry, next.removed)
      } else {
        this.scheduleAttempt(entry, this.clock.now())
      }
    }).catch(err => { this.log.error('handling the attempt to %p failed - %e', entry.peer, err) })
    entry.dial = { controller, done }
    return done
  }

  /** True when the outcome still belongs to the peer's current dial (not aborted, not stopped) */
  private settleDial (entry: PeerEntry, controller: AbortController, outcome: 'success' | 'failure'): boolean {
    this.metrics?.dials.increment({ [outcome]: true })
    if (entry.dial?.controller !== controller || this.entries.get(entry.key) !== entry) {
      return false
    }
    entry.dial = undefined
    return true
  }

  private abortDial (entry: PeerEntry): void {
    const dial = entry.dial
    entry.dial = undefined
    dial?.controller.abort()
  }

  // ---------------------------------------------------------------- the one timer

  /** Puts the peer where its next deadline says in the heap */
  private reschedule (entry: PeerEntry): void {
    const deadline = nextDeadline(entry)
    if (deadline === undefined) {
      this.heap.delete(entry)
    } else {
      entry.due = deadline.at
      this.heap.upsert(entry)
    }
    this.rearm()
  }

  /** Arms the clock timer for the earliest deadline, if it is not armed for it already */
  private rearm (): void {
    const at = !this.started || this.paused ? undefined : this.heap.peek()?.due
    if (at === this.timerAt && (at === undefined || this.timer !== undefined)) {
      return
    }
    if (this.timer !== undefined) {
      this.clock.clearTimeout(this.timer)
    }
    this.timer = undefined
    this.timerAt = at
    if (at !== undefined) {
      this.timer = this.clock.setTimeout(this.onTimer, Math.max(0, at - this.clock.now()))
    }
  }

  private readonly onTimer = (): void => {
    this.timer = undefined
    this.timerAt = undefined
    const now = this.clock.now()
    // a listener may pause us from inside a deadline: check before taking the next one out
    while (!this.paused) {
      const entry = this.heap.popDue(now)
      if (entry == null) {
        break
      }
      this.guard('a deadline', () => { this.fire(entry) })
    }
    this.rearm()
  }

  private fire (entry: PeerEntry): void {
    const deadline = nextDeadline(entry)
    if (deadline === undefined) {
      return
    }
    if (deadline.kind === 'hold') {
      this.apply(entry, { type: 'hold-expired' })
    } else if (deadline.kind === 'window') {
      this.apply(entry, { type: 'window-passed' })
    } else {
      void this.attempt(entry)
    }
  }

  // ---------------------------------------------------------------- helpers

  private emit<K extends ReconnectorEventType>(type: K, detail: HoldfastEvents[K]): void {
    this.safeDispatchEvent(type, { detail })
    try {
      this.broadcaster?.publish(type, detail)
    } catch (err) {
      this.log.error('publishing %s failed - %e', type, err)
    }
  }

  private isWatched (peer: PeerId): boolean {
    if (this.explicit.has(peer.toString())) {
      return true
    }
    try {
      return this.watchPredicate?.(peer) === true || this.protection?.isProtected(peer) === true
    } catch (err) {
      this.log.error('deciding whether %p is watched failed - %e', peer, err)
      return false
    }
  }

  private isConnected (peer: PeerId): boolean {
    return this.components.connectionManager.getConnections(peer).length > 0
  }

  /** Rewrites the peer's tags by `plan` (park, restore, drop); counted until written */
  private retag (peer: PeerId, plan: (tags: ReadonlyMap<string, { value: number }>) => TagPlan | undefined): void {
    const write = (async () => {
      const record = await this.components.peerStore.get(peer).catch(() => undefined)
      const tags = record == null ? undefined : plan(record.tags)
      if (tags !== undefined) {
        await this.components.peerStore.merge(peer, { tags })
      }
    })().catch(err => { this.log.error('rewriting the keep-alive tags of %p failed - %e', peer, err) })
    this.tagWrites.add(write)
    void write.finally(() => { this.tagWrites.delete(write) })
  }

  private async tagWritesSettled (): Promise<void> {
    while (this.tagWrites.size > 0) {
      await Promise.all(this.tagWrites)
    }
  }

  private async restoreLeftoverParkedTags (): Promise<void> {
    try {
      const parked = await this.components.peerStore.all({
        filters: [peer => [...peer.tags.keys()].some(name => name.startsWith(PARKED_TAG_PREFIX))]
      })
      for (const peer of parked) {
        this.retag(peer.id, restoreKeepAliveTags)
      }
      await this.tagWritesSettled()
    } catch (err) {
      this.log.error('restoring parked keep-alive tags failed - %e', err)
    }
  }
}

/** The init with every default filled in */
function configOf (init: ReconnectorInit): ReconnectConfig {
  const config: ReconnectConfig = { ...defaults }
  for (const option of Object.keys(defaults) as Array<keyof ReconnectConfig>) {
    config[option] = init[option] ?? defaults[option]
  }
  return config
}

function isLost (entry: PeerEntry): boolean {
  return entry.state === 'held' || entry.state === 'reconnecting'
}

function checkPeer (peer: PeerId): PeerId {
  if (!isPeerId(peer)) {
    throw new InvalidArgumentError('peer must be a PeerId', 'peer')
  }
  return peer
}
