/**
 * The member list's wire: sealed, signed announcements on the realm's gossipsub topic (and, with
 * another seal purpose, in realm DHT records), the topic itself, and the timers that send them.
 *
 * An announcement is accepted only if it opens with the realm key, carries the sender's own
 * signed peer record, has a seq above everything accepted from the sender (and not below the seq
 * it proved in auth), and was issued within `maxAge` (± `skew`) of our clock.
 */

import { StrictSign, TopicValidatorResult } from '@libp2p/gossipsub'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { multiaddr } from '@multiformats/multiaddr'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { ANNOUNCE_JITTER, ANNOUNCE_SOON_DELAY, MAX_RELAYS } from './constants.ts'
import { open, seal } from './keys.ts'
import { Announcement, Sealed } from './pb/realm.ts'
import { announcementAge, isFreshSeq, nextAnnounceDelay, nextSeq, publishableAddrs, relayAddrs } from './policy.ts'
import type { RealmKeys } from './keys.ts'
import type { MemberList } from './member-list.ts'
import type { Clock, RejectReason } from '@holdfast/interface'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { Logger, PeerId, PrivateKey } from '@libp2p/interface'
import type { AddressManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

export const SEAL_ANNOUNCEMENT = 'announcement'
export const SEAL_DHT = 'dht'

export interface AnnouncementsInit {
  keys: RealmKeys
  peerId: PeerId
  privateKey: PrivateKey
  addressManager: AddressManager
  clock: Clock
  maxMessageSize: number
  /** ms an announcement stays acceptable after its issue time */
  maxAge: number
  /** ms the sender's clock may be off from ours, either way */
  skew: number
  natType: string
}

export interface OpenedAnnouncement {
  announcement: Announcement
  addrs: Multiaddr[]
  relays: Multiaddr[]
}

export class Announcements {
  /** the seq of the last announcement built: proved in auth as the floor of the next ones */
  seq = 0n
  private readonly init: AnnouncementsInit
  private readonly list: MemberList
  /** our own signed peer record, re-signed only when the publishable addresses change */
  private ownRecord?: { key: string, envelope: Uint8Array<ArrayBuffer> }

  constructor (init: AnnouncementsInit, list: MemberList) {
    this.init = init
    this.list = list
  }

  /** a sealed announcement of this node, with the next seq */
  async build (leaving: boolean, purpose = SEAL_ANNOUNCEMENT): Promise<Uint8Array<ArrayBuffer>> {
    const { addressManager, clock, peerId, privateKey } = this.init
    const addrs = publishableAddrs(addressManager.getAddressesWithMetadata().map(a => ({ addr: a.multiaddr.toString(), verified: a.verified })))
    this.seq = nextSeq(this.seq, clock.now())
    const key = addrs.join(' ')
    if (this.ownRecord?.key !== key) {
      const record = new PeerRecord({ peerId, multiaddrs: addrs.map(a => multiaddr(a)), seqNumber: this.seq })
      this.ownRecord = { key, envelope: new Uint8Array((await RecordEnvelope.seal(record, privateKey)).marshal()) }
    }
    const announcement = Announcement.encode({
      peerId: new Uint8Array(peerId.toMultihash().bytes),
      seq: this.seq,
      signedPeerRecord: this.ownRecord.envelope,
      relays: relayAddrs(addrs).slice(0, MAX_RELAYS).map(a => multiaddr(a).bytes),
      natType: this.init.natType,
      leaving,
      issuedAt: BigInt(Math.max(0, Math.floor(clock.now())))
    })
    return Sealed.encode(seal(this.init.keys, purpose, announcement))
  }

  forgetOwnRecord (): void {
    this.ownRecord = undefined
  }

  /**
   * Decodes and checks one payload: the announcement, or why it is rejected. Realm DHT records
   * (purpose `dht`) are selected by seq among the DHT's copies instead, so neither the seq nor
   * the age is checked for them here.
   */
  async open (from: PeerId, data: Uint8Array, purpose = SEAL_ANNOUNCEMENT): Promise<OpenedAnnouncement | RejectReason> {
    if (data.byteLength > this.init.maxMessageSize) {
      return 'too-big'
    }
    let announcement: Announcement
    let addrs: Multiaddr[]
    let relays: Multiaddr[]
    try {
      const plaintext = open(this.init.keys, purpose, Sealed.decode(data))
      if (plaintext == null) {
        return 'unsealed'
      }
      announcement = Announcement.decode(plaintext, { limits: { relays: MAX_RELAYS } })
      if (!uint8ArrayEquals(announcement.peerId, from.toMultihash().bytes)) {
        return 'not-sender'
      }
      const known = this.list.seqOf(from)
      if (known?.record != null && known.addrs != null && uint8ArrayEquals(known.record, announcement.signedPeerRecord)) {
        // the same signed record as last time: already verified as the sender's
        addrs = known.addrs
      } else {
        const envelope = await RecordEnvelope.openAndCertify(announcement.signedPeerRecord, PeerRecord.DOMAIN)
        const record = PeerRecord.createFromProtobuf(envelope.payload)
        if (!peerIdFromPublicKey(envelope.publicKey).equals(from) || !record.peerId.equals(from)) {
          return 'not-sender'
        }
        addrs = record.multiaddrs
      }
      relays = announcement.relays.map(bytes => multiaddr(bytes))
    } catch {
      return 'malformed'
    }
    if (purpose === SEAL_ANNOUNCEMENT) {
      if (!isFreshSeq(this.list.seqOf(from), announcement.seq)) {
        return 'replay'
      }
      const age = announcementAge(this.init.clock.now(), Number(announcement.issuedAt), this.init.maxAge, this.init.skew)
      if (age !== 'ok') {
        return age
      }
    }
    return { announcement, addrs, relays }
  }
}

/** What the member-list topic asks of the realm, and tells it */
export interface MemberTopicHooks {
  /** this node has left: announcements of others are no longer taken in */
  leaving(): boolean
  /** an announcement of another member passed every check */
  accepted(from: PeerId, opened: OpenedAnnouncement): void
  /** an announcement was refused (gossipsub scores its sender down); `from` is unknown for an unsigned message */
  rejected(from: PeerId | undefined, reason: RejectReason): void
  /** a peer subscribed to the topic */
  subscribed(peer: PeerId): void
}

/**
 * The realm's gossipsub topic, `/holdfast/realm/<realmId>/members/1.0.0`: joined on start with
 * its validator, left before gossipsub stops, and this node's announcements published on it.
 */
export class MemberTopic {
  readonly name: string
  private readonly self: PeerId
  private readonly announcements: Announcements
  private readonly hooks: MemberTopicHooks
  private readonly log: Logger
  private pubsub?: GossipSub

  constructor (init: { realmId: string, self: PeerId, log: Logger }, announcements: Announcements, hooks: MemberTopicHooks) {
    this.name = `/holdfast/realm/${init.realmId}/members/1.0.0`
    this.self = init.self
    this.log = init.log
    this.announcements = announcements
    this.hooks = hooks
  }

  /** listeners added to gossipsub (0 or 1) */
  get size (): number {
    return this.pubsub == null ? 0 : 1
  }

  join (pubsub: GossipSub): void {
    if (pubsub.globalSignaturePolicy !== StrictSign) {
      this.log.error('gossipsub does not use StrictSign: the member list needs signed messages')
    }
    this.pubsub = pubsub
    pubsub.topicValidators.set(this.name, this.validate)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.subscribe(this.name)
  }

  leave (): void {
    const pubsub = this.pubsub
    this.pubsub = undefined
    pubsub?.topicValidators.delete(this.name)
    pubsub?.removeEventListener('subscription-change', this.onSubscriptionChange)
    try {
      pubsub?.unsubscribe(this.name)
    } catch (err) {
      this.log('unsubscribe: %e', err)
    }
  }

  /** publishes this node's announcement; false when it could not (no gossipsub, or no subscriber yet, normal on start) */
  async publish (leaving: boolean): Promise<boolean> {
    if (this.pubsub == null) {
      return false
    }
    try {
      await this.pubsub.publish(this.name, await this.announcements.build(leaving))
      return true
    } catch (err: any) {
      this.log('announce: %s', err?.message)
      return false
    }
  }

  /** gossipsub's topic validator: REJECT (the sender's score drops) anything not a fresh, sealed announcement of its own */
  readonly validate = async (_propagationSource: PeerId, message: Message): Promise<TopicValidatorResult> => {
    if (message.type !== 'signed') {
      this.hooks.rejected(undefined, 'malformed')
      return TopicValidatorResult.Reject
    }
    const result = await this.announcements.open(message.from, message.data)
    if (typeof result === 'string') {
      this.hooks.rejected(message.from, result)
      return TopicValidatorResult.Reject
    }
    if (!message.from.equals(this.self) && !this.hooks.leaving()) {
      this.hooks.accepted(message.from, result)
    }
    return TopicValidatorResult.Accept
  }

  private readonly onSubscriptionChange = (event: CustomEvent<{ peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    if (event.detail.subscriptions.some(s => s.topic === this.name && s.subscribe)) {
      this.hooks.subscribed(event.detail.peerId)
    }
  }
}

/** The announce, soon-announce and sweep timers of the member list */
export class AnnounceTimers {
  private announceTimer: unknown
  private soonTimer: unknown
  private sweepTimer: unknown
  private readonly clock: Clock
  private readonly interval: number
  private readonly sweepEvery: number
  private readonly tasks: { announce(): void, sweep(): void }

  constructor (clock: Clock, interval: number, memberTtl: number, tasks: { announce(): void, sweep(): void }) {
    this.clock = clock
    this.interval = interval
    // a quarter of the TTL: a member expires at most TTL × 1.25 after it was last heard
    this.sweepEvery = Math.max(1, Math.floor(memberTtl / 4))
    this.tasks = tasks
  }

  get size (): number {
    return (this.announceTimer == null ? 0 : 1) + (this.soonTimer == null ? 0 : 1) + (this.sweepTimer == null ? 0 : 1)
  }

  start (): void {
    this.scheduleAnnounce()
    this.scheduleSweep()
  }

  /** one announcement soon, however many members joined meanwhile: a burst of joins costs one extra announcement */
  soon (): void {
    if (this.soonTimer != null || this.announceTimer == null) {
      return
    }
    const delay = Math.min(ANNOUNCE_SOON_DELAY, this.interval / 4)
    this.soonTimer = this.clock.setTimeout(() => {
      this.soonTimer = undefined
      this.tasks.announce()
    }, nextAnnounceDelay(delay, 0.5, Math.random()))
  }

  stop (): void {
    this.clock.clearTimeout(this.announceTimer)
    this.clock.clearTimeout(this.soonTimer)
    this.clock.clearTimeout(this.sweepTimer)
    this.soonTimer = undefined
    this.announceTimer = undefined
    this.sweepTimer = undefined
  }

  private scheduleAnnounce (): void {
    this.announceTimer = this.clock.setTimeout(() => {
      this.tasks.announce()
      this.scheduleAnnounce()
    }, nextAnnounceDelay(this.interval, ANNOUNCE_JITTER, Math.random()))
  }

  private scheduleSweep (): void {
    this.sweepTimer = this.clock.setTimeout(() => {
      this.tasks.sweep()
      this.scheduleSweep()
    }, this.sweepEvery)
  }
}
