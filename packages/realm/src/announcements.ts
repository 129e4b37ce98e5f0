/**
 * The member list's wire: sealed, signed announcements on the realm's gossipsub topic (and, with
 * another seal purpose, in realm DHT records), and the timers that send them.
 *
 * An announcement is accepted only if it opens with the realm key, carries the sender's own
 * signed peer record, has a seq above everything accepted from the sender (and not below the seq
 * it proved in auth), and was issued within `maxAge` (± `skew`) of our clock.
 */

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
import type { Clock } from '@holdfast/interface'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { AddressManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Why an incoming member-list message was rejected */
export type RejectReason = 'malformed' | 'too-big' | 'unsealed' | 'not-sender' | 'replay' | 'stale' | 'future'

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
