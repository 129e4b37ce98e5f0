import { CAPABILITIES, findService, InvalidConfigError, NoAvailablePathError, NotRealmMemberError, RealmAuthError, TAGS, systemClock } from '@holdfast/interface'
import { StrictSign, TopicValidatorResult } from '@libp2p/gossipsub'
import { serviceCapabilities, serviceDependencies } from '@libp2p/interface'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { anySignal } from 'any-signal'
import { TypedEventEmitter } from 'main-event'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { ANNOUNCE_INTERVAL, ANNOUNCE_JITTER, ANNOUNCE_SOON_DELAY, AUTH_TIMEOUT, DHT_REPUBLISH_INTERVAL, MAX_MESSAGE_SIZE, MAX_RELAYS, MEMBER_TAG_VALUE, MEMBER_TTL_INTERVALS, NONCE_LENGTH } from './constants.ts'
import { createDhtRecord, dhtKey, openDhtRecord, realmDhtSelector } from './dht.ts'
import { authProof, deriveKeys, open, randomNonce, seal, verifyProof } from './keys.ts'
import { AddrBookRequest, AddrBookResponse, Announcement, AuthMessage, Sealed } from './pb/realm.ts'
import { expiredMembers, isCircuit, isFreshSeq, nextAnnounceDelay, nextSeq, publishableAddrs, relayAddrs } from './policy.ts'
import type { RealmKeys } from './keys.ts'
import type { AddressSource } from './policy.ts'
import type { CleanupBroadcaster, Clock, HoldfastEvents, InternalSizes, Introspectable, WatermarkConnectionManager } from '@holdfast/interface'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { AbortOptions, ComponentLogger, ConnectionGater, Connection, Libp2pEvents, Logger, Metrics, PeerId, PeerStore, PrivateKey, Startable, Stream, TypedEventTarget } from '@libp2p/interface'
import type { AddressManager, ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

/** What the realm needs of @holdfast/path-selector, when the node has one */
interface PathConnector {
  connect(peer: PeerId, opts: AbortOptions & { addrs?: Multiaddr[] }): Promise<Connection>
}

export type RealmMemberLeftReason = HoldfastEvents['member:left']['reason']

/** Why an incoming member-list message was rejected */
export type RejectReason = 'malformed' | 'too-big' | 'unsealed' | 'not-sender' | 'replay'

/** The realm's own events: the `member:*` ones of `HoldfastEvents`, plus rejections for monitoring */
export type RealmEvents = {
  [K in 'member:joined' | 'member:updated' | 'member:left']: CustomEvent<HoldfastEvents[K]>
} & {
  'announcement:rejected': CustomEvent<{ from: PeerId, reason: RejectReason }>
  /** this node, a relay, refused a reservation to a peer that is not an authenticated member */
  'reservation:denied': CustomEvent<{ peer: PeerId }>
}

export interface RealmMember {
  peerId: PeerId
  /** addresses from its latest announcement (reachable ones and relay circuits) */
  addrs: Multiaddr[]
  /** the relays it holds reservations on */
  relays: Multiaddr[]
  natType: string
  /** clock time it was last heard from */
  lastSeen: number
  /** holds an authenticated connection to this node right now */
  authenticated: boolean
}

export interface RealmStats {
  authSucceeded: number
  authFailed: number
  announcementsSent: number
  announcementsAccepted: number
  rejected: Record<RejectReason, number>
  reservationsDenied: number
}

export interface RealmInit {
  /** the pre-shared key: >= 32 bytes, as a Uint8Array or a hex or base64 string. Never logged or sent */
  psk: Uint8Array | string
  /**
   * ms, ± 20 % jitter
   *
   * @default 10000
   */
  announceInterval?: number
  /**
   * ms
   *
   * @default 3 × announceInterval
   */
  memberTtl?: number
  /**
   * ms
   *
   * @default 5000
   */
  authTimeout?: number
  /**
   * bytes, for every realm wire message
   *
   * @default 16384
   */
  maxMessageSize?: number
  /**
   * NAT type announced to members (informational)
   *
   * @default 'unknown'
   */
  natType?: string
  /**
   * when this node runs a circuit-relay server, only authenticated members get a reservation
   * (the realm's relay capacity can't be taken by outsiders)
   *
   * @default true
   */
  relayMembersOnly?: boolean
  /**
   * publish and look up realm DHT records when kad-dht is present (configure it with
   * `realmDhtValidator` / `realmDhtSelector` under `DHT_NAMESPACE`)
   *
   * @default true
   */
  dht?: boolean
  /**
   * answer the address-book protocol when this node runs a circuit-relay server
   *
   * @default true
   */
  serveAddressBook?: boolean
  clock?: Clock
}

export interface RealmComponents {
  peerId: PeerId
  privateKey: PrivateKey
  logger: ComponentLogger
  registrar: Registrar
  connectionManager: ConnectionManager
  addressManager: AddressManager
  peerStore: PeerStore
  events: TypedEventTarget<Libp2pEvents>
  connectionGater: ConnectionGater
  metrics?: Metrics
}

/** the connection manager's gater (`createGater`) takes the realm hook instead of being wrapped */
interface RealmHookGater extends ConnectionGater {
  setRealmHook(hook: ((peer: PeerId) => boolean | Promise<boolean>) | undefined): void
}

export interface Realm extends TypedEventTarget<RealmEvents>, Introspectable {
  /** public: derived from the PSK, names the realm's protocols and topic */
  readonly id: string
  members(): RealmMember[]
  isMember(peer: PeerId): boolean
  /** runs (or joins) the auth exchange on a connection; rejects with `RealmAuthError` */
  authenticate(connection: Connection, opts?: AbortOptions): Promise<void>
  /** reaches a member by its peer ID alone; resolves once authenticated and able to carry streams */
  connect(peer: PeerId, opts?: AbortOptions): Promise<Connection>
  /** announces now (also done on start, every interval and on address change) */
  announce(): Promise<void>
  /** puts this node's realm record on the DHT now (announce() does it in the background when due) */
  publishRecord(opts?: AbortOptions): Promise<void>
  /** tells the members this node leaves (they drop it at once) and stops announcing */
  leave(opts?: AbortOptions): Promise<void>
  stats(): RealmStats
}

/** what the realm uses of kad-dht (found by its capability, used only when present) */
interface RealmDht {
  put(key: Uint8Array, value: Uint8Array, opts?: AbortOptions): AsyncIterable<unknown>
  get(key: Uint8Array, opts?: AbortOptions): AsyncIterable<{ name: string, value?: Uint8Array }>
}

/** what the realm uses of circuit-relay-v2's server */
interface RelayServer {
  reservations: { has(peer: PeerId): boolean }
}

interface MemberState {
  peerId: PeerId
  addrs: Multiaddr[]
  relays: Multiaddr[]
  natType: string
  lastSeen: number
  /** ids of open connections that passed auth */
  connections: Set<string>
}

interface PendingAuth {
  promise: Promise<void>
  resolve(): void
  reject(err: Error): void
  timer: unknown
}

const SEAL_ANNOUNCEMENT = 'announcement'
const SEAL_DHT = 'dht'

export class RealmService extends TypedEventEmitter<RealmEvents> implements Realm, Startable {
  readonly [Symbol.toStringTag] = '@holdfast/realm'
  readonly [serviceCapabilities]: string[] = [CAPABILITIES.realm]
  readonly [serviceDependencies]: string[] = ['@libp2p/identify', '@libp2p/pubsub']

  readonly id: string
  private readonly keys: RealmKeys
  private readonly components: RealmComponents
  private readonly log: Logger
  private readonly clock: Clock
  private readonly announceInterval: number
  private readonly memberTtl: number
  private readonly authTimeout: number
  private readonly maxMessageSize: number
  private readonly natType: string
  private readonly relayMembersOnly: boolean
  private readonly useDht: boolean
  private readonly serveAddressBook: boolean
  private gate?: { original: ConnectionGater, installed: ConnectionGater } | { hooked: RealmHookGater }
  private readonly authProtocol: string
  readonly topic: string

  private readonly memberStates = new Map<string, MemberState>()
  /** per announcing peer: the last accepted seq, and its signed peer record so an unchanged one is not verified again */
  private readonly lastSeqs = new Map<string, { seq: bigint, record: Uint8Array, addrs: Multiaddr[] }>()
  /** our own signed peer record, re-signed only when the publishable addresses change */
  private ownRecord?: { key: string, envelope: Uint8Array<ArrayBuffer> }
  private readonly pendingAuth = new Map<string, PendingAuth>()
  private readonly counters: RealmStats = { authSucceeded: 0, authFailed: 0, announcementsSent: 0, announcementsAccepted: 0, rejected: { malformed: 0, 'too-big': 0, unsealed: 0, 'not-sender': 0, replay: 0 }, reservationsDenied: 0 }
  private seq = 0n
  private running = false
  private leaving = false
  private announceTimer: unknown
  private soonTimer: unknown
  private sweepTimer: unknown
  private listeners = 0
  private pubsub?: GossipSub
  private dht?: RealmDht
  private dhtPut?: Promise<void>
  private dhtPublishedAt = -Infinity
  private shutdown = new AbortController()
  private relayServer?: RelayServer
  private readonly addrBookProtocol: string
  private broadcaster?: CleanupBroadcaster
  private connManager?: WatermarkConnectionManager
  private pathSelector?: PathConnector

  constructor (components: RealmComponents, init: RealmInit) {
    super()
    this.keys = deriveKeys(init.psk)
    this.id = this.keys.realmId
    this.components = components
    this.log = components.logger.forComponent('holdfast:realm')
    this.clock = init.clock ?? systemClock
    this.announceInterval = positive(init.announceInterval ?? ANNOUNCE_INTERVAL, 'announceInterval')
    this.memberTtl = positive(init.memberTtl ?? this.announceInterval * MEMBER_TTL_INTERVALS, 'memberTtl')
    this.authTimeout = positive(init.authTimeout ?? AUTH_TIMEOUT, 'authTimeout')
    this.maxMessageSize = positive(init.maxMessageSize ?? MAX_MESSAGE_SIZE, 'maxMessageSize')
    this.natType = init.natType ?? 'unknown'
    this.relayMembersOnly = init.relayMembersOnly ?? true
    this.useDht = init.dht ?? true
    this.serveAddressBook = init.serveAddressBook ?? true
    this.authProtocol = `/holdfast/realm/${this.id}/auth/1.0.0`
    this.topic = `/holdfast/realm/${this.id}/members/1.0.0`
    this.addrBookProtocol = `/holdfast/realm/${this.id}/addrbook/1.0.0`
  }

  async start (): Promise<void> {
    await this.components.registrar.handle(this.authProtocol, (stream, connection) => {
      void this.answerAuth(stream, connection)
    }, { runOnLimitedConnection: true })
    this.components.events.addEventListener('connection:open', this.onConnectionOpen)
    this.components.events.addEventListener('connection:close', this.onConnectionClose)
    this.components.events.addEventListener('self:peer:update', this.onSelfUpdate)
    this.listeners = 3
    this.running = true
    this.leaving = false
    this.shutdown = new AbortController()
    if (this.relayMembersOnly) {
      this.installRelayGate()
    }
  }

  /** chains "authenticated members only" in front of the node's relay-reservation check */
  private installRelayGate (): void {
    const original = this.components.connectionGater
    if (typeof (original as Partial<RealmHookGater>).setRealmHook === 'function') {
      (original as RealmHookGater).setRealmHook(this.admitsReservation)
      this.gate = { hooked: original as RealmHookGater }
      return
    }
    // inherit, not copy: a gater chained the same way (the connection manager's) keeps its methods on its prototype
    const installed: ConnectionGater = Object.create(original)
    installed.denyInboundRelayReservation = async (peer) => {
      return (await original.denyInboundRelayReservation?.(peer)) === true || !(await this.admitsReservation(peer))
    }
    this.components.connectionGater = installed
    this.gate = { original, installed }
  }

  private removeRelayGate (): void {
    if (this.gate == null) {
      return
    }
    if ('hooked' in this.gate) {
      this.gate.hooked.setRealmHook(undefined)
    } else if (this.components.connectionGater === this.gate.installed) {
      this.components.connectionGater = this.gate.original
    }
    this.gate = undefined
  }

  /** a reservation request races the auth that the same connection started: wait for it (bounded by authTimeout) */
  private readonly admitsReservation = async (peer: PeerId): Promise<boolean> => {
    const authenticated = (): boolean => (this.memberStates.get(peer.toString())?.connections.size ?? 0) > 0
    if (!authenticated()) {
      // joins the auth the connection started, or starts waiting for it if its connection:open has not reached us yet
      await Promise.allSettled(this.components.connectionManager.getConnections(peer).map(async c => this.authenticate(c)))
    }
    if (authenticated()) {
      return true
    }
    this.counters.reservationsDenied++
    this.safeDispatchEvent('reservation:denied', { detail: { peer } })
    return false
  }

  async afterStart (): Promise<void> {
    this.broadcaster = findService<CleanupBroadcaster>(this.components, CAPABILITIES.cleanupBroadcaster)
    this.connManager = findService<WatermarkConnectionManager>(this.components, CAPABILITIES.connectionManager)
    this.pathSelector = findService<PathConnector>(this.components, CAPABILITIES.pathSelector)
    this.pubsub = findService<GossipSub>(this.components, '@libp2p/pubsub')
    this.dht = this.useDht ? findService<RealmDht>(this.components, '@libp2p/kad-dht') : undefined
    this.relayServer = findRelayServer(this.components)
    if (this.relayServer != null && this.serveAddressBook) {
      await this.components.registrar.handle(this.addrBookProtocol, (stream, connection) => {
        void this.answerAddressBook(stream, connection)
      }, { runOnLimitedConnection: true })
    }
    if (this.pubsub != null) {
      if (this.pubsub.globalSignaturePolicy !== StrictSign) {
        this.log.error('gossipsub does not use StrictSign: the member list needs signed messages')
      }
      this.pubsub.topicValidators.set(this.topic, this.validate)
      this.pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
      this.listeners++
      this.pubsub.subscribe(this.topic)
    }
    // connections opened before we listened
    for (const connection of this.components.connectionManager.getConnections()) {
      void this.authenticate(connection).catch(() => {})
    }
    void this.announce()
    this.scheduleAnnounce()
    this.scheduleSweep()
  }

  async beforeStop (): Promise<void> {
    if (this.pubsub != null) {
      this.pubsub.topicValidators.delete(this.topic)
      this.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
      try {
        this.pubsub.unsubscribe(this.topic)
      } catch (err) {
        this.log('unsubscribe: %e', err)
      }
    }
  }

  async stop (): Promise<void> {
    this.running = false
    this.shutdown.abort()
    await this.components.registrar.unhandle(this.authProtocol)
    await this.components.registrar.unhandle(this.addrBookProtocol)
    await this.dhtPut
    this.dht = undefined
    this.relayServer = undefined
    this.components.events.removeEventListener('connection:open', this.onConnectionOpen)
    this.components.events.removeEventListener('connection:close', this.onConnectionClose)
    this.components.events.removeEventListener('self:peer:update', this.onSelfUpdate)
    this.listeners = 0
    this.removeRelayGate()
    this.clearTimers()
    for (const pending of this.pendingAuth.values()) {
      this.clock.clearTimeout(pending.timer)
      pending.reject(new RealmAuthError('The realm service stopped'))
    }
    this.pendingAuth.clear()
    // the protections are the realm's to take back: they must not outlive it in the connection manager
    for (const state of this.memberStates.values()) {
      this.connManager?.unprotect(state.peerId, TAGS.realmMember)
    }
    this.memberStates.clear()
    this.lastSeqs.clear()
    this.ownRecord = undefined
  }

  members (): RealmMember[] {
    return [...this.memberStates.values()].map(state => ({
      peerId: state.peerId,
      addrs: [...state.addrs],
      relays: [...state.relays],
      natType: state.natType,
      lastSeen: state.lastSeen,
      authenticated: state.connections.size > 0
    }))
  }

  isMember (peer: PeerId): boolean {
    return this.memberStates.has(peer.toString())
  }

  stats (): RealmStats {
    return { ...this.counters, rejected: { ...this.counters.rejected } }
  }

  internalSizes (): InternalSizes {
    return {
      peers: this.memberStates.size,
      timers: (this.announceTimer == null ? 0 : 1) + (this.soonTimer == null ? 0 : 1) + (this.sweepTimer == null ? 0 : 1) + this.pendingAuth.size,
      listeners: this.listeners,
      gate: this.gate == null ? 0 : 1,
      dhtPuts: this.dhtPut == null ? 0 : 1,
      pendingAuth: this.pendingAuth.size,
      seqs: this.lastSeqs.size
    }
  }

  // ---- auth ----

  authenticate (connection: Connection, opts: AbortOptions = {}): Promise<void> {
    const existing = this.pendingAuth.get(connection.id)
    if (existing != null) {
      return existing.promise
    }
    if (this.memberStates.get(connection.remotePeer.toString())?.connections.has(connection.id) === true) {
      return Promise.resolve()
    }
    if (!this.running || this.leaving) {
      return Promise.reject(new RealmAuthError('The realm service is not running or has left the realm'))
    }
    const pending = this.track(connection)
    if (connection.direction === 'outbound') {
      this.runAuth(connection, opts).then(() => { pending.resolve() }, err => { pending.reject(err) })
    }
    return pending.promise
  }

  /** one entry per connection under auth, settled once, its timer cleared when it settles */
  private track (connection: Connection): PendingAuth {
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    // nobody may be awaiting it (auth started from connection:open)
    promise.catch(() => {})
    const settle = (fn: () => void): void => {
      if (this.pendingAuth.get(connection.id) === entry) {
        this.pendingAuth.delete(connection.id)
        this.clock.clearTimeout(entry.timer)
        fn()
      }
    }
    const entry: PendingAuth = {
      promise,
      resolve: () => { settle(() => { this.onAuthenticated(connection); resolve() }) },
      reject: (err) => { settle(() => { this.onAuthFailed(connection, err); reject(err) }) },
      timer: undefined
    }
    entry.timer = this.clock.setTimeout(() => {
      entry.reject(new RealmAuthError('Realm authentication timed out'))
    }, this.authTimeout)
    this.pendingAuth.set(connection.id, entry)
    return entry
  }

  /** the dialer's side */
  private async runAuth (connection: Connection, opts: AbortOptions): Promise<void> {
    let stream: Stream | undefined
    try {
      stream = await connection.newStream(this.authProtocol, { runOnLimitedConnection: true, negotiateFully: false, signal: opts.signal })
      const pb = pbStream(stream, { maxDataLength: this.maxMessageSize }).pb(AuthMessage)
      const ownNonce = randomNonce(NONCE_LENGTH)
      await pb.write({ nonce: ownNonce }, opts)
      const reply = await pb.read(opts)
      const self = new Uint8Array(this.components.peerId.toMultihash().bytes)
      const remote = new Uint8Array(connection.remotePeer.toMultihash().bytes)
      if (reply.nonce?.length !== NONCE_LENGTH || !verifyProof(this.keys, reply.proof, remote, self, reply.nonce, ownNonce)) {
        throw new RealmAuthError('The peer failed to prove realm membership')
      }
      await pb.write({ proof: authProof(this.keys, self, remote, ownNonce, reply.nonce) }, opts)
      const verdict = await pb.read(opts)
      if (verdict.accepted !== true) {
        throw new RealmAuthError('The peer refused our realm proof')
      }
      await stream.close(opts).catch(() => {})
    } catch (err: any) {
      stream?.abort(err)
      throw err?.name === 'RealmAuthError' ? err : new RealmAuthError(`Realm authentication failed: ${err?.name ?? 'Error'}`)
    }
  }

  /** the listener's side */
  private async answerAuth (stream: Stream, connection: Connection): Promise<void> {
    if (!this.running || this.leaving) {
      stream.abort(new RealmAuthError())
      return
    }
    const pending = this.pendingAuth.get(connection.id) ?? this.track(connection)
    try {
      const pb = pbStream(stream, { maxDataLength: this.maxMessageSize }).pb(AuthMessage)
      const hello = await pb.read()
      if (hello.nonce?.length !== NONCE_LENGTH) {
        throw new RealmAuthError('Malformed realm auth hello')
      }
      const self = new Uint8Array(this.components.peerId.toMultihash().bytes)
      const remote = new Uint8Array(connection.remotePeer.toMultihash().bytes)
      const ownNonce = randomNonce(NONCE_LENGTH)
      await pb.write({ nonce: ownNonce, proof: authProof(this.keys, self, remote, ownNonce, hello.nonce) })
      const answer = await pb.read()
      const accepted = verifyProof(this.keys, answer.proof, remote, self, hello.nonce, ownNonce)
      await pb.write({ accepted })
      if (!accepted) {
        throw new RealmAuthError('The peer failed to prove realm membership')
      }
      // authenticated once the verdict is out: the dialer may hang up before our close completes
      pending.resolve()
      await stream.close().catch(() => {})
    } catch (err: any) {
      pending.reject(err?.name === 'RealmAuthError' ? err : new RealmAuthError(`Realm authentication failed: ${err?.name ?? 'Error'}`))
      stream.abort(err)
    }
  }

  private onAuthenticated (connection: Connection): void {
    this.counters.authSucceeded++
    this.components.metrics?.registerCounter('holdfast_realm_auth_total').increment()
    const peer = connection.remotePeer
    if (connection.status !== 'open') {
      return
    }
    const state = this.memberStates.get(peer.toString())
    if (state != null) {
      state.connections.add(connection.id)
      state.lastSeen = this.clock.now()
      return
    }
    this.addMember({ peerId: peer, addrs: [], relays: [], natType: 'unknown', lastSeen: this.clock.now(), connections: new Set([connection.id]) })
  }

  private onAuthFailed (connection: Connection, err: Error): void {
    this.counters.authFailed++
    this.components.metrics?.registerCounter('holdfast_realm_auth_failures_total').increment()
    this.log('realm auth with %p on %s failed: %s', connection.remotePeer, connection.id, err.message)
  }

  private addMember (state: MemberState): void {
    const peer = state.peerId
    this.memberStates.set(peer.toString(), state)
    this.connManager?.protect(peer, TAGS.realmMember)
    this.components.peerStore.merge(peer, { tags: { [TAGS.realmMember]: { value: MEMBER_TAG_VALUE } } }).catch(err => {
      this.log('could not tag %p: %e', peer, err)
    })
    this.broadcaster?.markReady(peer, 'realm-auth')
    this.emit('member:joined', { peer })
    // the newcomer knows nobody yet: answer with our own announcement instead of making it wait an interval
    this.announceSoon()
  }

  private removeMember (peer: PeerId, reason: RealmMemberLeftReason): void {
    if (!this.memberStates.delete(peer.toString())) {
      return
    }
    this.connManager?.unprotect(peer, TAGS.realmMember)
    this.components.peerStore.merge(peer, { tags: { [TAGS.realmMember]: undefined } }).catch(err => {
      this.log('could not untag %p: %e', peer, err)
    })
    this.emit('member:left', { peer, reason })
  }

  private emit<K extends 'member:joined' | 'member:updated' | 'member:left'> (type: K, detail: HoldfastEvents[K]): void {
    this.safeDispatchEvent(type, { detail } as any)
    this.broadcaster?.publish(type, detail)
  }

  private readonly onConnectionOpen = (event: CustomEvent<Connection>): void => {
    this.authenticate(event.detail).catch(() => {})
  }

  private readonly onConnectionClose = (event: CustomEvent<Connection>): void => {
    const connection = event.detail
    this.pendingAuth.get(connection.id)?.reject(new RealmAuthError('The connection closed during realm authentication'))
    const state = this.memberStates.get(connection.remotePeer.toString())
    if (state?.connections.delete(connection.id) === true) {
      state.lastSeen = this.clock.now()
    }
  }

  private readonly onSelfUpdate = (): void => {
    // new addresses: the DHT record is due at once too
    this.dhtPublishedAt = -Infinity
    void this.announce()
  }

  // ---- member list ----

  async announce (): Promise<void> {
    if (!this.running || this.pubsub == null) {
      return
    }
    try {
      const data = await this.buildAnnouncement(this.leaving)
      await this.pubsub.publish(this.topic, data)
      this.counters.announcementsSent++
    } catch (err: any) {
      // no subscriber yet is normal on start; the next interval tries again
      this.log('announce: %s', err?.message)
    }
    if (this.dht != null && !this.leaving && this.dhtPut == null && this.clock.now() - this.dhtPublishedAt >= DHT_REPUBLISH_INTERVAL) {
      this.dhtPut = this.publishRecord().catch(err => { this.log('dht put: %e', err) }).finally(() => { this.dhtPut = undefined })
    }
  }

  /** puts this node's realm record on the DHT (announce() does it in the background when due) */
  async publishRecord (opts: AbortOptions = {}): Promise<void> {
    if (this.dht == null || !this.running) {
      return
    }
    const signal = anySignal([this.shutdown.signal, opts.signal])
    try {
      const sealed = await this.buildAnnouncement(false, SEAL_DHT)
      const value = await createDhtRecord(this.id, this.seq, sealed, this.components.privateKey)
      for await (const event of this.dht.put(dhtKey(this.id, this.components.peerId), value, { signal })) {
        void event
      }
      this.dhtPublishedAt = this.clock.now()
    } finally {
      signal.clear()
    }
  }

  /** the addresses of a member's realm DHT record, or undefined when there is none that opens */
  private async lookupDht (peer: PeerId, opts: AbortOptions): Promise<Multiaddr[] | undefined> {
    if (this.dht == null) {
      return undefined
    }
    const key = dhtKey(this.id, peer)
    const values: Uint8Array[] = []
    const signal = anySignal([this.shutdown.signal, opts.signal])
    try {
      for await (const event of this.dht.get(key, { signal })) {
        if (event.name === 'VALUE' && event.value != null) {
          values.push(event.value)
        }
      }
    } catch (err) {
      this.log('dht get %p: %e', peer, err)
    } finally {
      signal.clear()
    }
    if (values.length === 0) {
      return undefined
    }
    try {
      const record = await openDhtRecord(key, values[await realmDhtSelector(key, values)])
      const opened = await this.openAnnouncement(peer, record.sealed, SEAL_DHT)
      if (typeof opened === 'string' || opened.announcement.seq !== record.seq) {
        return undefined
      }
      return opened.addrs
    } catch {
      return undefined
    }
  }

  private async buildAnnouncement (leaving: boolean, purpose = SEAL_ANNOUNCEMENT): Promise<Uint8Array<ArrayBuffer>> {
    const addrs = publishableAddrs(this.components.addressManager.getAddressesWithMetadata().map(a => ({ addr: a.multiaddr.toString(), verified: a.verified })))
    this.seq = nextSeq(this.seq, this.clock.now())
    const key = addrs.join(' ')
    if (this.ownRecord?.key !== key) {
      const record = new PeerRecord({ peerId: this.components.peerId, multiaddrs: addrs.map(a => multiaddr(a)), seqNumber: this.seq })
      this.ownRecord = { key, envelope: new Uint8Array((await RecordEnvelope.seal(record, this.components.privateKey)).marshal()) }
    }
    const announcement = Announcement.encode({
      peerId: new Uint8Array(this.components.peerId.toMultihash().bytes),
      seq: this.seq,
      signedPeerRecord: this.ownRecord.envelope,
      relays: relayAddrs(addrs.filter(isCircuit)).slice(0, MAX_RELAYS).map(a => multiaddr(a).bytes),
      natType: this.natType,
      leaving
    })
    return Sealed.encode(seal(this.keys, purpose, announcement))
  }

  /** gossipsub's topic validator: REJECT (the sender's score drops) anything not a fresh, sealed announcement of its own */
  private readonly validate = async (_propagationSource: PeerId, message: Message): Promise<TopicValidatorResult> => {
    if (message.type !== 'signed') {
      return this.reject(undefined, 'malformed')
    }
    const result = await this.openAnnouncement(message.from, message.data)
    if (typeof result === 'string') {
      return this.reject(message.from, result)
    }
    this.apply(message.from, result.announcement, result.addrs)
    return TopicValidatorResult.Accept
  }

  /** decodes and checks one member-list payload: an announcement, or why it is rejected. Exposed for the fuzz tests */
  async openAnnouncement (from: PeerId, data: Uint8Array, purpose = SEAL_ANNOUNCEMENT): Promise<{ announcement: Announcement, addrs: Multiaddr[] } | RejectReason> {
    if (data.byteLength > this.maxMessageSize) {
      return 'too-big'
    }
    let announcement: Announcement
    let addrs: Multiaddr[]
    try {
      const box = Sealed.decode(data)
      const plaintext = open(this.keys, purpose, box)
      if (plaintext == null) {
        return 'unsealed'
      }
      announcement = Announcement.decode(plaintext, { limits: { relays: MAX_RELAYS } })
      if (!uint8ArrayEquals(announcement.peerId, from.toMultihash().bytes)) {
        return 'not-sender'
      }
      const known = this.lastSeqs.get(from.toString())
      if (known != null && uint8ArrayEquals(known.record, announcement.signedPeerRecord)) {
        // the same signed record as last time: already verified as the sender's
        addrs = known.addrs
      } else {
        const envelope = await RecordEnvelope.openAndCertify(announcement.signedPeerRecord, PeerRecord.DOMAIN)
        if (!peerIdFromPublicKey(envelope.publicKey).equals(from)) {
          return 'not-sender'
        }
        const record = PeerRecord.createFromProtobuf(envelope.payload)
        if (!record.peerId.equals(from)) {
          return 'not-sender'
        }
        addrs = record.multiaddrs
      }
      announcement.relays.forEach(bytes => multiaddr(bytes))
    } catch {
      return 'malformed'
    }
    if (purpose === SEAL_ANNOUNCEMENT && !isFreshSeq(this.lastSeqs.get(from.toString())?.seq, announcement.seq)) {
      return 'replay'
    }
    return { announcement, addrs }
  }

  private reject (from: PeerId | undefined, reason: RejectReason): TopicValidatorResult {
    this.counters.rejected[reason]++
    this.components.metrics?.registerCounter('holdfast_realm_rejected_total').increment()
    if (from != null) {
      this.safeDispatchEvent('announcement:rejected', { detail: { from, reason } })
    }
    return TopicValidatorResult.Reject
  }

  private apply (from: PeerId, announcement: Announcement, addrs: Multiaddr[]): void {
    if (from.equals(this.components.peerId) || this.leaving) {
      return
    }
    this.counters.announcementsAccepted++
    const key = from.toString()
    if (announcement.leaving) {
      this.lastSeqs.delete(key)
      this.removeMember(from, 'left')
      return
    }
    this.lastSeqs.set(key, { seq: announcement.seq, record: announcement.signedPeerRecord, addrs })
    const relays = announcement.relays.map(bytes => multiaddr(bytes))
    const state = this.memberStates.get(key)
    if (state == null) {
      this.addMember({ peerId: from, addrs, relays, natType: announcement.natType, lastSeen: this.clock.now(), connections: new Set() })
      return
    }
    const changed = !sameAddrs(state.addrs, addrs) || !sameAddrs(state.relays, relays) || state.natType !== announcement.natType
    Object.assign(state, { addrs, relays, natType: announcement.natType, lastSeen: this.clock.now() })
    if (changed) {
      this.emit('member:updated', { peer: from })
    }
  }

  async leave (opts: AbortOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted()
    this.leaving = true
    this.clearTimers()
    await this.announce()
    // a node that left answers no more auth: the members it meets later do not re-add it
    await this.components.registrar.unhandle(this.authProtocol)
    for (const state of [...this.memberStates.values()]) {
      this.removeMember(state.peerId, 'left')
    }
    this.lastSeqs.clear()
    this.ownRecord = undefined
  }

  /** a new peer on the topic: announce now (well, after a short jittered delay), since it missed everything before */
  private readonly onSubscriptionChange = (event: CustomEvent<{ peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    if (event.detail.subscriptions.some(s => s.topic === this.topic && s.subscribe)) {
      this.announceSoon()
    }
  }

  /** one announcement soon, however many members joined meanwhile: a burst of joins costs one extra announcement */
  private announceSoon (): void {
    if (this.soonTimer != null || !this.running || this.leaving) {
      return
    }
    const delay = Math.min(ANNOUNCE_SOON_DELAY, this.announceInterval / 4)
    this.soonTimer = this.clock.setTimeout(() => {
      this.soonTimer = undefined
      void this.announce()
    }, nextAnnounceDelay(delay, 0.5, Math.random()))
  }

  private scheduleAnnounce (): void {
    if (!this.running || this.leaving) {
      return
    }
    this.announceTimer = this.clock.setTimeout(() => {
      this.announceTimer = undefined
      void this.announce()
      this.scheduleAnnounce()
    }, nextAnnounceDelay(this.announceInterval, ANNOUNCE_JITTER, Math.random()))
  }

  private scheduleSweep (): void {
    if (!this.running || this.leaving) {
      return
    }
    // a quarter of the TTL: a member expires at most TTL × 1.25 after it was last heard
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweepTimer = undefined
      this.sweep()
      this.scheduleSweep()
    }, Math.max(1, Math.floor(this.memberTtl / 4)))
  }

  private sweep (): void {
    const liveness = [...this.memberStates.entries()].map(([id, state]) => ({ id, lastSeen: state.lastSeen, connected: state.connections.size > 0 }))
    for (const id of expiredMembers(liveness, this.clock.now(), this.memberTtl)) {
      const state = this.memberStates.get(id)
      if (state != null) {
        this.lastSeqs.delete(id)
        this.removeMember(state.peerId, 'expired')
      }
    }
  }

  private clearTimers (): void {
    this.clock.clearTimeout(this.announceTimer)
    this.clock.clearTimeout(this.soonTimer)
    this.clock.clearTimeout(this.sweepTimer)
    this.soonTimer = undefined
    this.announceTimer = undefined
    this.sweepTimer = undefined
  }

  // ---- connect by ID ----

  async connect (peer: PeerId, opts: AbortOptions = {}): Promise<Connection> {
    const state = this.memberStates.get(peer.toString())
    // read before the DHT lookup, which can teach the peer store the very addresses it finds
    const stored = await this.components.peerStore.get(peer).then(p => p.addresses.map(a => a.multiaddr), (): Multiaddr[] => [])
    // the DHT is the authoritative directory: a record sealed with the realm key proves membership too
    const fromDht = state == null ? await this.lookupDht(peer, opts) : undefined
    if (state == null && fromDht == null) {
      throw new NotRealmMemberError()
    }
    const authenticated = this.components.connectionManager.getConnections(peer).find(c => c.status === 'open' && state?.connections.has(c.id) === true)
    if (authenticated != null) {
      return authenticated
    }
    let lastError: Error | undefined
    for (const [source, find] of this.addressSources(peer, stored, state, fromDht, opts)) {
      const addrs = await find()
      if (addrs.length === 0) {
        continue
      }
      try {
        // with a path selector, it picks relay-first or direct-first from these addresses and
        // upgrades a relayed connection in the background (spec 06: "connect through the path-selector")
        const connection = this.pathSelector != null
          ? await this.pathSelector.connect(peer, { addrs, signal: opts.signal })
          : await this.components.connectionManager.openConnection(addrs, { signal: opts.signal })
        await this.authenticate(connection, opts)
        this.lastSource = source
        return connection
      } catch (err) {
        opts.signal?.throwIfAborted()
        this.log('connect %p via %s failed: %e', peer, source, err)
        lastError = err as Error
      }
    }
    if (lastError != null) {
      throw lastError
    }
    throw new NoAvailablePathError('No address of the member is known')
  }

  /** where the last successful `connect` found its addresses (tests and diagnostics) */
  lastSource?: AddressSource

  /** seed 004's order; each source is only asked when the ones before it gave nothing that worked */
  private addressSources (peer: PeerId, stored: Multiaddr[], state: MemberState | undefined, fromDht: Multiaddr[] | undefined, opts: AbortOptions): Array<[AddressSource, () => Promise<Multiaddr[]>]> {
    const withPeer = (addrs: Multiaddr[]): Multiaddr[] => addrs.map(a => a.getComponents().at(-1)?.value === peer.toString() ? a : a.encapsulate(`/p2p/${peer.toString()}`))
    return [
      ['peer-store', async () => withPeer(stored)],
      ['member-list', async () => withPeer([...state?.addrs ?? [], ...(state?.relays ?? []).map(r => r.encapsulate('/p2p-circuit'))])],
      ['dht', async () => withPeer(fromDht ?? await this.lookupDht(peer, opts) ?? [])],
      ['address-book', async () => withPeer(await this.askAddressBooks(peer, opts))],
      ['shared-relay', async () => {
        const ownRelays = relayAddrs(this.components.addressManager.getAddresses().map(String).filter(isCircuit))
        return ownRelays.map(r => multiaddr(`${r}/p2p-circuit/p2p/${peer.toString()}`))
      }]
    ]
  }

  /** asks the authenticated members that serve an address book (a relay) which circuit addresses the peer holds there */
  private async askAddressBooks (peer: PeerId, opts: AbortOptions): Promise<Multiaddr[]> {
    for (const connection of this.components.connectionManager.getConnections()) {
      const book = connection.remotePeer
      if (book.equals(peer) || this.memberStates.get(book.toString())?.connections.has(connection.id) !== true) {
        continue
      }
      const protocols = await this.components.peerStore.get(book).then(p => p.protocols, (): string[] => [])
      if (!protocols.includes(this.addrBookProtocol)) {
        continue
      }
      try {
        const stream = await connection.newStream(this.addrBookProtocol, { runOnLimitedConnection: true, signal: opts.signal })
        const pb = pbStream(stream, { maxDataLength: this.maxMessageSize })
        await pb.write({ peerId: new Uint8Array(peer.toMultihash().bytes) }, AddrBookRequest, opts)
        const response = await pb.read(AddrBookResponse, { ...opts, limits: { addrs: MAX_RELAYS } })
        await stream.close(opts).catch(() => {})
        const addrs = response.addrs.map(bytes => multiaddr(bytes)).filter(a => isCircuit(a.toString()))
        if (addrs.length > 0) {
          return addrs
        }
      } catch (err) {
        this.log('address book of %p: %e', book, err)
      }
    }
    return []
  }

  /** the relay's side: members only, and only circuit addresses through this relay */
  private async answerAddressBook (stream: Stream, connection: Connection): Promise<void> {
    try {
      if (this.memberStates.get(connection.remotePeer.toString())?.connections.has(connection.id) !== true) {
        throw new NotRealmMemberError()
      }
      const pb = pbStream(stream, { maxDataLength: this.maxMessageSize })
      const request = await pb.read(AddrBookRequest)
      const target = peerIdFromString(uint8ArrayToString(request.peerId, 'base58btc'))
      const addrs = this.relayServer?.reservations.has(target) === true
        ? this.components.addressManager.getAddresses().filter(a => !isCircuit(a.toString())).slice(0, MAX_RELAYS).map(a => multiaddr(`${a.toString()}/p2p-circuit/p2p/${target.toString()}`).bytes)
        : []
      await pb.write({ addrs }, AddrBookResponse)
      await stream.close().catch(() => {})
    } catch (err: any) {
      this.counters.rejected.malformed += err?.name === 'NotRealmMemberError' ? 0 : 1
      stream.abort(err)
    }
  }
}

/** circuit-relay-v2's server declares no capability: found by its tag */
function findRelayServer (components: object): RelayServer | undefined {
  const all = (components as { components?: Record<string, unknown> }).components ?? {}
  return Object.values(all).find((s: any) => s?.[Symbol.toStringTag] === '@libp2p/circuit-relay-v2-server') as RelayServer | undefined
}

function positive (value: number, option: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidConfigError(`${option} must be a positive number of ${option === 'maxMessageSize' ? 'bytes' : 'ms'}`, option)
  }
  return value
}

function sameAddrs (a: Multiaddr[], b: Multiaddr[]): boolean {
  return a.length === b.length && a.every((addr, i) => addr.equals(b[i]))
}
