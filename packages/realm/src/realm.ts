/**
 * The realm service: composes the auth protocol, the member list and its announcements, the
 * gates, the realm DHT records, the address book and connect by ID, and wires them to the node.
 */

import { addGaterLayer, CAPABILITIES, checkOptions, checkPeerId, CLEANUP_ORDER, emit, EventListeners, findService, findServices, gaterLayers, InvalidArgumentError, registerService, removeGaterLayer, TAGS } from '@holdfast/interface'
import { isConnection, serviceCapabilities, serviceDependencies } from '@libp2p/interface'
import { setMaxListeners, TypedEventEmitter } from 'main-event'
import { AddressBook } from './address-book.ts'
import { Announcements, AnnounceTimers, MemberTopic, SEAL_ANNOUNCEMENT } from './announcements.ts'
import { RealmAuth } from './auth.ts'
import { configOf } from './config.ts'
import { Connector } from './connect.ts'
import { MEMBER_TAG_VALUE, REJECT_BACKOFF_INITIAL, REJECT_BACKOFF_MAX, RENDEZVOUS_LOOKUP_INTERVAL } from './constants.ts'
import { findRealmDht, RealmRecords } from './dht.ts'
import { Discovery } from './discovery.ts'
import { RealmRejectedError } from './errors.ts'
import { DenyTable, realmGateLayer } from './gate.ts'
import { deriveKeys } from './keys.ts'
import { MemberList } from './member-list.ts'
import { RealmCounters } from './metrics.ts'
import { authFailureVerdict, seqRetention } from './policy.ts'
import { Rendezvous } from './rendezvous.ts'
import type { RelayServer } from './address-book.ts'
import type { OpenedAnnouncement } from './announcements.ts'
import type { AuthFailed } from './auth.ts'
import type { RealmConfig } from './config.ts'
import type { RealmComponents, RealmInit } from './index.ts'
import type { RealmKeys } from './keys.ts'
import type { MemberState } from './member-list.ts'
import type { RealmAccess } from './members-only.ts'
import type { AuthFailure, CleanupBroadcaster, Clock, InternalSizes, PathSelector, Realm, RealmEvents, RealmMember, RealmMemberLeftReason, RealmRejectReason, RealmStats, RejectReason, WatermarkConnectionManager } from '@holdfast/interface'
import type { GossipSub } from '@libp2p/gossipsub'
import type { AbortOptions, Connection, Libp2pEvents, Logger, PeerId, Startable } from '@libp2p/interface'

/** the realm's layer in the node's gater chain */
const GATE_OWNER = '@holdfast/realm'

export class RealmService extends TypedEventEmitter<RealmEvents> implements Realm, RealmAccess, Startable {
  readonly [Symbol.toStringTag] = '@holdfast/realm'
  readonly [serviceCapabilities]: string[] = [CAPABILITIES.realm]
  readonly [serviceDependencies]: string[] = ['@libp2p/identify', '@libp2p/pubsub']

  readonly id: string
  readonly topic: string
  private readonly keys: RealmKeys
  private readonly components: RealmComponents
  private readonly log: Logger
  private readonly clock: Clock
  private readonly config: RealmConfig
  private readonly list: MemberList
  private readonly announcements: Announcements
  private readonly memberTopic: MemberTopic
  private readonly timers: AnnounceTimers
  private readonly auth: RealmAuth
  private readonly denials: DenyTable
  private readonly addressBook: AddressBook
  private readonly connector: Connector
  private readonly counters: RealmCounters

  private running = false
  private leaving = false
  private readonly nodeEvents: EventListeners<Libp2pEvents>
  private shutdown = new AbortController()
  /** takes the realm's layer out of the broadcaster's cleanup chain */
  private removeCleanupLayer?: () => void
  private records?: RealmRecords
  private relayServer?: RelayServer
  private broadcaster?: CleanupBroadcaster
  private connManager?: WatermarkConnectionManager
  private pathSelector?: PathSelector
  private discovery?: Discovery

  constructor (components: RealmComponents, init: RealmInit) {
    super()
    this.keys = deriveKeys(init.psk)
    this.id = this.keys.realmId
    this.components = components
    this.log = components.logger.forComponent('holdfast:realm')
    const config = this.config = configOf(init)
    this.clock = config.clock
    this.counters = new RealmCounters(components.metrics)
    this.denials = new DenyTable(this.clock, REJECT_BACKOFF_INITIAL, REJECT_BACKOFF_MAX)
    this.list = new MemberList(this.clock, seqRetention(config.memberTtl, config.clockSkew), {
      joined: (state, met) => { this.onJoined(state, met) },
      updated: peer => { emit(this, this.broadcaster, this.log, 'member:updated', { peer }) },
      left: (peer, reason) => { this.onLeft(peer, reason) }
    })
    this.announcements = new Announcements({ keys: this.keys, peerId: components.peerId, privateKey: components.privateKey, addressManager: components.addressManager, clock: this.clock, maxMessageSize: config.maxMessageSize, maxAge: config.memberTtl, skew: config.clockSkew, natType: config.natType }, this.list)
    this.memberTopic = new MemberTopic({ realmId: this.id, self: components.peerId, log: this.log }, this.announcements, {
      leaving: () => this.leaving,
      accepted: (from, { announcement, addrs, relays }) => {
        this.counters.announcementAccepted()
        this.list.announced(from, announcement, addrs, relays)
      },
      rejected: (from, reason) => {
        this.counters.announcementRejected(reason)
        if (from != null) {
          this.dispatch('announcement:rejected', { from, reason })
        }
      },
      // a new member on the topic missed everything before: announce soon (an outsider's subscription is no reason)
      subscribed: peer => { if (this.list.isConnected(peer)) { this.timers.soon() } }
    })
    this.topic = this.memberTopic.name
    this.timers = new AnnounceTimers(this.clock, config.announceInterval, config.memberTtl, {
      announce: () => { void this.announce() },
      sweep: () => { this.list.sweep(config.memberTtl); this.denials.sweep() }
    })
    this.auth = new RealmAuth({ keys: this.keys, self: components.peerId, clock: this.clock, authTimeout: config.authTimeout, maxMessageSize: config.maxMessageSize, log: this.log }, {
      ownSeq: () => this.announcements.seq,
      accepting: () => this.running && !this.leaving,
      isAuthenticated: connection => this.list.isAuthenticated(connection),
      onAuthenticated: (connection, seq) => { this.onAuthenticated(connection, seq) },
      onFailed: (connection, reason, err) => { this.onAuthFailed(connection, reason, err) }
    })
    this.addressBook = new AddressBook({
      realmId: this.id,
      connectionManager: components.connectionManager,
      peerStore: components.peerStore,
      addressManager: components.addressManager,
      maxMessageSize: config.maxMessageSize,
      log: this.log,
      isAuthenticated: connection => this.list.isAuthenticated(connection),
      malformed: () => { this.counters.announcementRejected('malformed') },
      accessDenied: (peer, resource) => { this.accessDenied(peer, resource) }
    })
    this.connector = new Connector({
      peerStore: components.peerStore,
      addressManager: components.addressManager,
      connectionManager: components.connectionManager,
      log: this.log,
      broadcaster: () => this.broadcaster,
      pathSelector: () => this.pathSelector,
      list: this.list,
      dhtAddrs: async (peer, opts) => this.records?.lookup(peer, this.signal(opts)),
      addressBookAddrs: async (peer, opts) => this.addressBook.ask(peer, opts),
      rendezvousAddrs: async (peer, opts) => this.discovery?.addrsOf(peer, opts) ?? [],
      isDenied: peer => config.exclusive && this.denials.isDenied(peer),
      authenticate: async (connection, opts) => this.authenticate(connection, opts)
    })
    this.nodeEvents = new EventListeners<Libp2pEvents>(components.events, {
      'connection:open': this.onConnectionOpen,
      'connection:close': this.onConnectionClose,
      'self:peer:update': this.onSelfUpdate
    }, this.log)
    registerService(components, this)
  }

  async start (): Promise<void> {
    await this.components.registrar.handle(this.auth.protocol, this.auth.handle, { runOnLimitedConnection: true })
    this.nodeEvents.add()
    this.running = true
    this.leaving = false
    this.shutdown = new AbortController()
    // the DHT puts get it as their signal (kad-dht listens once per peer it sends to), and each lookup combines it with its caller's
    setMaxListeners(Infinity, this.shutdown.signal)
    this.installGate()
  }

  async afterStart (): Promise<void> {
    this.broadcaster = findService<CleanupBroadcaster>(this.components, CAPABILITIES.cleanupBroadcaster)
    this.removeCleanupLayer = this.broadcaster?.onCleanup('realm', CLEANUP_ORDER.realm, this.onPeerCleanup)
    this.connManager = findService<WatermarkConnectionManager>(this.components, CAPABILITIES.connectionManager)
    this.pathSelector = findService<PathSelector>(this.components, CAPABILITIES.pathSelector)
    const dht = this.config.dht ? findRealmDht(this.components, this.id) : undefined
    this.records = dht == null ? undefined : new RealmRecords({ dht, realmId: this.id, peerId: this.components.peerId, privateKey: this.components.privateKey, clock: this.clock, log: this.log }, this.announcements)
    // circuit-relay-v2's server declares no capability: it is found by its tag, under its usual key
    this.relayServer = findService<RelayServer>(this.components, '@libp2p/circuit-relay-v2-server')
    if (this.relayServer != null && this.config.serveAddressBook) {
      const relay = this.relayServer
      await this.components.registrar.handle(this.addressBook.protocol, (stream, connection) => {
        void this.addressBook.answer(stream, connection, relay)
      }, { runOnLimitedConnection: true })
    }
    const pubsub = findService<GossipSub>(this.components, '@libp2p/pubsub')
    if (pubsub != null) {
      this.memberTopic.join(pubsub)
    }
    // connections opened before we listened
    for (const connection of this.components.connectionManager.getConnections()) {
      void this.authenticate(connection).catch(() => {})
    }
    void this.announce()
    this.timers.start()
    this.startDiscovery()
  }

  /** rendezvous on the node's DHTs, whichever they are, when it has one */
  private startDiscovery (): void {
    if (!this.config.rendezvous || findServices(this.components, '@libp2p/kad-dht').length === 0) {
      return
    }
    const rendezvous = new Rendezvous({ keys: this.keys, peerId: this.components.peerId, contentRouting: this.components.contentRouting, clock: this.clock, log: this.log })
    this.discovery = new Discovery({
      rendezvous,
      clock: this.clock,
      interval: RENDEZVOUS_LOOKUP_INTERVAL,
      log: this.log,
      known: peer => this.list.isConnected(peer),
      alone: () => !this.list.anyConnected(),
      connect: async (peer, opts) => this.connect(peer, opts)
    })
    this.discovery.start()
  }

  async beforeStop (): Promise<void> {
    // before the DHTs stop: no provide or lookup may start against a stopping node
    await this.discovery?.stop()
    this.discovery = undefined
    this.memberTopic.leave()
  }

  async stop (): Promise<void> {
    this.running = false
    this.shutdown.abort()
    await this.components.registrar.unhandle(this.auth.protocol)
    await this.components.registrar.unhandle(this.addressBook.protocol)
    await Promise.all([this.records?.settled(), this.discovery?.stop()])
    this.records = undefined
    this.discovery = undefined
    this.relayServer = undefined
    this.nodeEvents.remove()
    this.removeCleanupLayer?.()
    this.removeCleanupLayer = undefined
    removeGaterLayer(this.components, GATE_OWNER)
    this.timers.stop()
    this.auth.stop()
    // the protections are the realm's to take back: they must not outlive it in the connection manager
    for (const state of this.list.values()) {
      this.connManager?.unprotect(state.peerId, TAGS.realmMember)
    }
    this.list.clear(undefined, true)
    this.denials.clear()
    this.announcements.forgetOwnRecord()
  }

  members (): RealmMember[] {
    return this.list.snapshot()
  }

  isMember (peer: PeerId): boolean {
    return this.list.get(checkPeerId(peer)) != null
  }

  isInfrastructure (peer: PeerId): boolean {
    return this.config.infrastructure.has(checkPeerId(peer).toString())
  }

  stats (): RealmStats {
    return this.counters.snapshot()
  }

  internalSizes (): InternalSizes {
    return {
      peers: this.list.size,
      timers: this.timers.size + this.auth.size,
      listeners: this.nodeEvents.size + this.memberTopic.size,
      gate: gaterLayers(this.components).includes(GATE_OWNER) ? 1 : 0,
      cleanupLayer: this.removeCleanupLayer == null ? 0 : 1,
      dhtPuts: this.records?.size ?? 0,
      pendingAuth: this.auth.size,
      seqs: this.list.seqCount,
      denied: this.denials.size,
      discovery: this.discovery?.size ?? 0
    }
  }

  /** where the last successful `connect` found its addresses (tests and diagnostics) */
  get lastSource (): string | undefined {
    return this.connector.lastSource
  }

  async authenticate (connection: Connection, opts?: AbortOptions): Promise<void> {
    if (!isConnection(connection)) {
      throw new InvalidArgumentError('connection must be a libp2p Connection', 'connection')
    }
    await this.auth.authenticate(connection, checkOptions(opts))
  }

  async connect (peer: PeerId, opts?: AbortOptions): Promise<Connection> {
    return this.connector.connect(checkPeerId(peer), checkOptions(opts))
  }

  /** `membersOnly` services ask here: an authenticated member on this connection, or named infrastructure */
  async admits (connection: Connection): Promise<boolean> {
    if (this.isInfrastructure(connection.remotePeer) || this.list.isAuthenticated(connection)) {
      return true
    }
    await this.auth.authenticate(connection).catch(() => {})
    return this.list.isAuthenticated(connection)
  }

  accessDenied (peer: PeerId, resource: string): void {
    this.counters.refused(resource)
    this.log('refused %s to %p, not a member', resource, peer)
  }

  // ---- auth outcomes ----

  private onAuthenticated (connection: Connection, seq: bigint): void {
    this.counters.authSucceeded()
    if (connection.status !== 'open') {
      return
    }
    this.denials.forget(connection.remotePeer)
    this.list.authenticated(connection, seq)
  }

  private onAuthFailed (connection: Connection, reason: AuthFailure, err: AuthFailed): void {
    const peer = connection.remotePeer
    const verdict = authFailureVerdict({
      reason,
      outbound: connection.direction === 'outbound',
      infrastructure: this.isInfrastructure(peer),
      known: this.list.get(peer) != null,
      connected: this.list.isConnected(peer),
      exclusive: this.config.exclusive
    })
    if (verdict.count) {
      this.counters.authFailed(reason)
      this.log('realm auth with %p on %s failed (%s): %s', peer, connection.id, reason, err.message)
    }
    if (verdict.expel) {
      // it answered and is not of this realm now, whatever it announced before
      this.list.remove(peer, 'auth-failed')
    }
    if (verdict.deny) {
      this.denials.deny(peer)
    }
    if (verdict.close != null) {
      connection.abort(new RealmRejectedError(`Not a realm member (${reason}): the connection is closed`))
      this.rejected(peer, verdict.close)
    }
  }

  private rejected (peer: PeerId, reason: RealmRejectReason): void {
    this.counters.connectionRejected(reason)
    this.dispatch('realm:rejected', { peer, reason })
  }

  /** the realm's own monitoring events, on the service only (the broadcaster carries the `member:*` ones) */
  private dispatch<K extends 'realm:rejected' | 'announcement:rejected' | 'reservation:denied'> (type: K, detail: RealmEvents[K]['detail']): void {
    if (this.listenerCount(type) > 0) {
      this.safeDispatchEvent(type, { detail })
    }
  }

  // ---- membership ----

  private onJoined (state: MemberState, met: boolean): void {
    const peer = state.peerId
    this.connManager?.protect(peer, TAGS.realmMember)
    this.components.peerStore.merge(peer, { tags: { [TAGS.realmMember]: { value: MEMBER_TAG_VALUE } } }).catch(err => {
      this.log('could not tag %p: %e', peer, err)
    })
    this.broadcaster?.markReady(peer, 'realm-auth')
    emit(this, this.broadcaster, this.log, 'member:joined', { peer })
    if (met) {
      // a newcomer we met knows nobody yet: answer with our own announcement instead of making it
      // wait an interval. One heard of through an announcement is not answered: in a realm of n
      // members every join would make all n announce again, n² messages while the realm forms
      this.timers.soon()
    }
  }

  private onLeft (peer: PeerId, reason: RealmMemberLeftReason): void {
    this.connManager?.unprotect(peer, TAGS.realmMember)
    this.components.peerStore.merge(peer, { tags: { [TAGS.realmMember]: undefined } }).catch(err => {
      this.log('could not untag %p: %e', peer, err)
    })
    emit(this, this.broadcaster, this.log, 'member:left', { peer, reason })
  }

  // ---- member list ----

  async announce (): Promise<void> {
    if (!this.running || this.memberTopic.size === 0) {
      return
    }
    if (await this.memberTopic.publish(this.leaving)) {
      this.counters.announcementSent()
    }
    if (!this.leaving) {
      this.records?.republishIfDue(this.shutdown.signal)
    }
  }

  async publishRecord (opts?: AbortOptions): Promise<void> {
    const checked = checkOptions(opts)
    if (this.running) {
      await this.records?.publish(this.signal(checked))
    }
  }

  /** decodes and checks one member-list payload (exposed for the fuzz tests) */
  async openAnnouncement (from: PeerId, data: Uint8Array, purpose = SEAL_ANNOUNCEMENT): Promise<OpenedAnnouncement | RejectReason> {
    return this.announcements.open(checkPeerId(from, 'from'), data, purpose)
  }

  async leave (opts?: AbortOptions): Promise<void> {
    checkOptions(opts).signal?.throwIfAborted()
    this.leaving = true
    this.timers.stop()
    await this.announce()
    // a node that left answers no more auth: the members it meets later do not re-add it
    await this.components.registrar.unhandle(this.auth.protocol)
    this.list.clear('left', true)
    this.announcements.forgetOwnRecord()
  }

  // ---- node events ----

  private readonly onConnectionOpen = (event: CustomEvent<Connection>): void => {
    this.authenticate(event.detail).catch(() => {})
  }

  /**
   * One connection closed: its auth exchange and its place among the member's authenticated
   * connections go. Its own trigger, not the cleanup chain: a peer may close one connection and
   * keep another, and no cleanup runs for that.
   */
  private readonly onConnectionClose = (event: CustomEvent<Connection>): void => {
    this.connectionGone(event.detail.remotePeer, event.detail.id)
  }

  private connectionGone (peer: PeerId, connectionId: string): void {
    this.auth.connectionClosed(connectionId)
    this.list.connectionClosed(peer, connectionId)
  }

  /**
   * The realm's layer of a peer's cleanup. The broadcaster has already rejected the peer's
   * `connect` under way. What goes here is what the realm holds for connections of the peer
   * that are no longer open (libp2p may report the disconnect, and the cleanup run, before each
   * `connection:close`). What stays: the membership (it ends when the member leaves, fails auth
   * or expires), and the realm's memory against outsiders and replays, which a disconnect must
   * not wipe: the deny table, the last seqs, and each connection's final auth verdict.
   */
  private readonly onPeerCleanup = (peer: PeerId): void => {
    const open = new Set(this.components.connectionManager.getConnections(peer).filter(c => c.status === 'open').map(c => c.id))
    for (const id of new Set([...this.auth.pendingOf(peer), ...this.list.connectionsOf(peer)])) {
      if (!open.has(id)) {
        this.connectionGone(peer, id)
      }
    }
  }

  private readonly onSelfUpdate = (): void => {
    if (!this.running || this.leaving) {
      return
    }
    // new addresses: the DHT record and the rendezvous are due at once too
    this.records?.stale()
    this.discovery?.now()
    void this.announce()
  }

  // ---- gates ----

  /** adds the realm's layer to the node's gater chain; taken out on stop */
  private installGate (): void {
    addGaterLayer(this.components, GATE_OWNER, realmGateLayer(this.config, this.denials, {
      isInfrastructure: peer => this.isInfrastructure(peer),
      isAuthenticatedMember: async peer => {
        if (!this.list.isConnected(peer)) {
          // a reservation or circuit request races the auth its connection started: wait for it (bounded by authTimeout)
          await Promise.allSettled(this.components.connectionManager.getConnections(peer).map(async c => this.auth.authenticate(c)))
        }
        return this.list.isConnected(peer)
      },
      refused: (peer, where) => {
        if (where === 'denied') {
          this.rejected(peer, 'denied')
          return
        }
        this.counters.refused(where)
        if (where === 'reservation') {
          this.dispatch('reservation:denied', { peer })
        }
      }
    }))
  }

  private signal (opts: AbortOptions): AbortOptions {
    return { ...opts, signal: opts.signal == null ? this.shutdown.signal : AbortSignal.any([this.shutdown.signal, opts.signal]) }
  }
}
