/**
 * The service: it listens to the node, keeps one entry per watched peer, asks policy.ts what
 * each fact means, and carries out the answer with its helpers: the one timer (schedule.ts),
 * the dials (attempts.ts) and the keep-alive tags (keep-alive-tags.ts).
 */

import { CAPABILITIES, checkPeerId, CLEANUP_ORDER, emit, EventListeners, findService, InvalidArgumentError, registerService } from '@holdfast/interface'
import { serviceCapabilities } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import { Attempts } from './attempts.ts'
import { configOf } from './config.ts'
import { KeepAliveTags } from './keep-alive-tags.ts'
import { connectedEntry, isLost } from './peer-entry.ts'
import { backoffDelay, crossingYield, hasKeepAliveTag, nextDeadline, releasesPeer, transition } from './policy.ts'
import { Schedule } from './schedule.ts'
import type { ReconnectorConfig } from './config.ts'
import type { Reconnector as ReconnectorInterface, ReconnectorComponents, ReconnectorEvents, ReconnectorInit, ResumeOptions } from './index.ts'
import type { PeerEntry } from './peer-entry.ts'
import type { Input, RemovalReason } from './policy.ts'
import type { CleanupBroadcaster, CleanupReason, InternalSizes, ReconnectorPeerState, WatermarkConnectionManager } from '@holdfast/interface'
import type { CounterGroup, Libp2pEvents, Logger, PeerId, PeerUpdate, Startable } from '@libp2p/interface'

export class Reconnector extends TypedEventEmitter<ReconnectorEvents> implements ReconnectorInterface, Startable {
  readonly [Symbol.toStringTag] = '@holdfast/reconnector'
  readonly [serviceCapabilities]: string[] = [CAPABILITIES.reconnector]

  private readonly components: ReconnectorComponents
  private readonly log: Logger
  private readonly config: ReconnectorConfig
  private readonly entries = new Map<string, PeerEntry>()
  /** peers watched with `watch(peer)`: the app's list, kept across stop/start */
  private readonly explicit = new Map<string, PeerId>()
  private readonly schedule: Schedule
  private readonly attempts: Attempts
  private readonly tags: KeepAliveTags
  private readonly metrics?: { removed: CounterGroup, recovered: CounterGroup }
  private broadcaster?: CleanupBroadcaster
  private protection?: WatermarkConnectionManager
  /** removes the reconnector's layer from the broadcaster's cleanup chain */
  private leaveCleanup?: () => void
  private paused = false
  private pausedAt = 0
  private readonly nodeEvents: EventListeners<Libp2pEvents>
  private started = false
  /** the entry whose removal is being reported, so `state()` says `removed` meanwhile */
  private removing?: PeerEntry

  constructor (components: ReconnectorComponents, init: ReconnectorInit = {}) {
    super()
    this.components = components
    this.log = components.logger.forComponent('holdfast:reconnector')
    this.config = configOf(init)
    const dials = components.metrics?.registerCounterGroup('holdfast_reconnector_dials_total', { label: 'outcome', help: 'Reconnect attempts, by outcome' })
    this.schedule = new Schedule(this.config.clock, this.log, this.fire)
    this.attempts = new Attempts(this.log, { current: this.isCurrent, succeeded: this.attemptSucceeded, failed: this.attemptFailed }, dials)
    this.tags = new KeepAliveTags(components.peerStore, this.log)

    if (components.metrics != null) {
      this.metrics = {
        removed: components.metrics.registerCounterGroup('holdfast_reconnector_removed_total', { label: 'reason', help: 'Peers given up on, by reason' }),
        recovered: components.metrics.registerCounterGroup('holdfast_reconnector_recovered_total', { label: 'how', help: 'Held peers that came back, by how' })
      }
      components.metrics.registerMetric('holdfast_reconnector_held_peers', { help: 'Peers held or reconnecting now', calculate: () => this.schedule.size })
    }
    this.nodeEvents = new EventListeners<Libp2pEvents>(components.events, {
      'peer:connect': this.onPeerConnect,
      'peer:disconnect': this.onPeerDisconnect,
      'peer:update': this.onPeerUpdate
    }, this.log)
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
    const { broadcaster, components: { connectionManager } } = this
    this.attempts.use(this.config.dial ??
      (broadcaster != null ? async (peer, options) => broadcaster.dial(peer, options) : async (peer, options) => connectionManager.openConnection(peer, options)))
    this.leaveCleanup = broadcaster?.onCleanup('reconnector', CLEANUP_ORDER.reconnector, this.onCleanup)
    this.schedule.setActive(!this.paused)

    this.nodeEvents.add()

    // tags parked by a run that ended without `stop()` (a crash) go back first
    await this.tags.restoreLeftovers()
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
      this.tags.restore(entry.peer)
    }
    await this.tags.settled()
  }

  async stop (): Promise<void> {
    if (!this.started) {
      return
    }
    this.started = false
    this.removeNodeListeners()
    this.leaveCleanup?.()
    this.leaveCleanup = undefined
    for (const entry of this.entries.values()) {
      this.attempts.abort(entry)
    }
    this.entries.clear()
    this.schedule.clear()
    this.paused = false
    this.schedule.setActive(false)
    await this.tags.settled()
  }

  private removeNodeListeners (): void {
    this.nodeEvents.remove()
  }

  // ---------------------------------------------------------------- the API

  state (peer: PeerId): ReconnectorPeerState | undefined {
    const key = checkPeerId(peer).toString()
    if (this.removing?.key === key) {
      return 'removed'
    }
    return this.entries.get(key)?.state
  }

  watch (peer: PeerId): void {
    const key = checkPeerId(peer).toString()
    this.explicit.set(key, peer)
    if (this.started && !this.entries.has(key) && this.isConnected(peer)) {
      this.adopt(peer)
    }
  }

  unwatch (peer: PeerId): void {
    const key = checkPeerId(peer).toString()
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
    this.pausedAt = this.config.clock.now()
    this.schedule.setActive(false)
    this.log('paused with %d held peers', this.schedule.size)
  }

  resume (opts: ResumeOptions = {}): void {
    if (opts == null || typeof opts !== 'object' || (opts.resetBackoff !== undefined && typeof opts.resetBackoff !== 'boolean')) {
      throw new InvalidArgumentError('opts must be { resetBackoff?: boolean }', 'opts')
    }
    if (!this.paused) {
      return
    }
    const now = this.config.clock.now()
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
        const delayMs = backoffDelay(0, this.config, this.config.random())
        entry.nextAttemptAt = now + delayMs
        scheduled.push([entry, delayMs])
      }
      entry.due = nextDeadline(entry)?.at ?? entry.holdDeadline
    }
    this.paused = false
    this.schedule.reorder()
    this.schedule.setActive(this.started)
    this.log('resumed, %d held peers rescheduled', scheduled.length)
    for (const [entry, delayMs] of scheduled) {
      emit(this, this.broadcaster, this.log, 'peer:reconnecting', { peer: entry.peer, attempt: entry.attempts + 1, delayMs })
    }
  }

  async reconnectNow (peer?: PeerId): Promise<void> {
    const targets = peer === undefined
      ? [...this.entries.values()].filter(isLost)
      : [this.entries.get(checkPeerId(peer).toString())].filter(entry => entry != null && isLost(entry)) as PeerEntry[]
    await Promise.all(targets.map(async entry => {
      if (entry.dial != null) {
        return entry.dial.done
      }
      entry.state = 'reconnecting'
      emit(this, this.broadcaster, this.log, 'peer:reconnecting', { peer: entry.peer, attempt: entry.attempts + 1, delayMs: 0 })
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
      held: this.schedule.size,
      timers: this.schedule.timers,
      listeners: 0,
      dials,
      tagWrites: this.tags.size,
      watched: this.explicit.size,
      nodeListeners: this.nodeEvents.size,
      cleanupLayers: this.leaveCleanup == null ? 0 : 1
    }
  }

  // ---------------------------------------------------------------- what the node and the broadcaster say

  private readonly onPeerConnect = (event: CustomEvent<PeerId>): void => {
    const peer = event.detail
    const entry = this.entries.get(peer.toString())
    if (entry == null) {
      if (this.isWatched(peer)) {
        this.adopt(peer)
      }
      return
    }
    this.apply(entry, { type: 'connected' })
  }

  private readonly onPeerDisconnect = (event: CustomEvent<PeerId>): void => {
    const peer = event.detail
    // a new connection may already have replaced the last one
    if (this.isConnected(peer)) {
      return
    }
    const entry = this.entries.get(peer.toString()) ?? (this.isWatched(peer) ? this.adopt(peer) : undefined)
    if (entry != null) {
      this.apply(entry, { type: 'disconnected', released: entry.released })
    }
  }

  /** Tags changed: a protection may have started or ended, or someone tagged a watched peer keep-alive */
  private readonly onPeerUpdate = (event: CustomEvent<PeerUpdate>): void => {
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
      this.tags.park(id)
    }
  }

  /** The reconnector's layer of the broadcaster's cleanup chain: a cleanup that lets go of the peer removes it */
  private readonly onCleanup = (peer: PeerId, reason: CleanupReason): void => {
    const entry = this.entries.get(peer.toString())
    if (entry != null && releasesPeer(reason)) {
      this.apply(entry, { type: 'released' })
    }
  }

  // ---------------------------------------------------------------- the state machine

  /** Starts watching a connected peer: the app hears `peer:online` once */
  private adopt (peer: PeerId): PeerEntry {
    const entry = connectedEntry(peer)
    this.entries.set(entry.key, entry)
    this.tags.park(peer)
    emit(this, this.broadcaster, this.log, 'peer:online', { peer })
    return entry
  }

  /** Applies one input to a peer and carries out what the policy decided */
  private apply (entry: PeerEntry, input: Input): void {
    const before = entry.state
    const next = transition(before, input)
    const now = this.config.clock.now()
    if (next.removed !== undefined || next.state === 'removed') {
      this.remove(entry, next.removed)
      return
    }
    entry.state = next.state
    entry.released ||= next.releaseOnDisconnect === true
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
      this.schedule.reschedule(entry)
      emit(this, this.broadcaster, this.log, 'peer:held', { peer: entry.peer })
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
    this.schedule.delete(entry)
    this.metrics?.recovered.increment({ [how]: true })
    emit(this, this.broadcaster, this.log, 'peer:recovered', detail)
  }

  /** Forgets the peer; with a reason, the app is told it is offline and the broadcaster cleans it up */
  private remove (entry: PeerEntry, reason: RemovalReason | undefined): void {
    this.entries.delete(entry.key)
    this.schedule.delete(entry)
    this.attempts.abort(entry)
    // letting go drops the parked keep-alive tags, as libp2p's own reconnect does when it gives
    // up: restoring them would let libp2p redial a peer the reconnector no longer wants
    if (reason === undefined || reason === 'unwatched') {
      this.tags.restore(entry.peer)
    } else {
      this.tags.drop(entry.peer)
    }
    if (reason === undefined) {
      return
    }
    this.metrics?.removed.increment({ [reason]: true })
    this.log('removed %p: %s', entry.peer, reason)
    this.removing = entry
    try {
      emit(this, this.broadcaster, this.log, 'peer:removed', { peer: entry.peer, reason })
      emit(this, this.broadcaster, this.log, 'peer:offline', { peer: entry.peer })
    } finally {
      this.removing = undefined
    }
  }

  private scheduleAttempt (entry: PeerEntry, from: number, extraMs = 0): void {
    const delayMs = backoffDelay(entry.attempts, this.config, this.config.random()) + extraMs
    entry.nextAttemptAt = from + delayMs
    this.schedule.reschedule(entry)
    emit(this, this.broadcaster, this.log, 'peer:reconnecting', { peer: entry.peer, attempt: entry.attempts + 1, delayMs })
  }

  /** One dial; its outcome goes through the state machine. Never rejects. */
  private attempt (entry: PeerEntry): Promise<void> {
    if (entry.dial == null) {
      entry.nextAttemptAt = Number.POSITIVE_INFINITY
      entry.dials++
      this.schedule.reschedule(entry)
    }
    return this.attempts.start(entry)
  }

  private readonly isCurrent = (entry: PeerEntry): boolean => this.entries.get(entry.key) === entry

  private readonly attemptSucceeded = (entry: PeerEntry): void => {
    if (isLost(entry)) {
      // the dial hook connected without libp2p reporting a new peer:connect
      this.apply(entry, { type: 'connected' })
    }
  }

  private readonly attemptFailed = (entry: PeerEntry, err: Error): void => {
    if (!isLost(entry)) {
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
      this.scheduleAttempt(entry, this.config.clock.now())
    }
  }

  /** A deadline of the peer came: the end of its window, its next attempt or the end of its hold */
  private readonly fire = (entry: PeerEntry): void => {
    const deadline = nextDeadline(entry)
    if (deadline?.kind === 'hold') {
      this.apply(entry, { type: 'hold-expired' })
    } else if (deadline?.kind === 'window') {
      this.apply(entry, { type: 'window-passed' })
    } else if (deadline?.kind === 'attempt') {
      void this.attempt(entry)
    }
  }

  // ---------------------------------------------------------------- helpers

  private isWatched (peer: PeerId): boolean {
    if (this.explicit.has(peer.toString())) {
      return true
    }
    try {
      return this.config.watch?.(peer) === true || this.protection?.isProtected(peer) === true
    } catch (err) {
      this.log.error('deciding whether %p is watched failed - %e', peer, err)
      return false
    }
  }

  private isConnected (peer: PeerId): boolean {
    return this.components.connectionManager.getConnections(peer).length > 0
  }
}
