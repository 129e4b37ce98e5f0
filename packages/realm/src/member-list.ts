/**
 * Who is in the realm: the members (each with its addresses, relays and authenticated
 * connections), and the last seq of every peer heard from. The seqs outlive a member's leave and
 * expiry for `retention`, longer than any of its announcements stays acceptable, so a departed
 * member's captured announcement can't bring it back.
 */

import { MAX_SEQ_ENTRIES } from './constants.ts'
import { expiredMembers, setBounded } from './policy.ts'
import type { Clock, RealmMember, RealmMemberLeftReason } from '@holdfast/interface'
import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface MemberState {
  peerId: PeerId
  addrs: Multiaddr[]
  relays: Multiaddr[]
  natType: string
  /** clock time it was last heard from */
  lastSeen: number
  /** ids of open connections that passed auth */
  connections: Set<string>
}

/** what is remembered of a peer's announcements */
export interface SeqEntry {
  /** the last accepted announcement's seq */
  seq?: bigint
  /** the seq the peer proved in its latest auth: nothing below it is accepted */
  floor?: bigint
  /** its last signed peer record, so an unchanged one is not verified again, and its addresses */
  record?: Uint8Array
  addrs?: Multiaddr[]
  /** clock time after which the entry may be forgotten */
  keepUntil: number
}

export interface MemberListHooks {
  /** `met`: it authenticated with this node (rather than being heard of through an announcement) */
  joined(state: MemberState, met: boolean): void
  updated(peer: PeerId): void
  left(peer: PeerId, reason: RealmMemberLeftReason): void
}

export class MemberList {
  private readonly members = new Map<string, MemberState>()
  private readonly seqs = new Map<string, SeqEntry>()
  private readonly clock: Clock
  private readonly retention: number
  private readonly hooks: MemberListHooks

  constructor (clock: Clock, retention: number, hooks: MemberListHooks) {
    this.clock = clock
    this.retention = retention
    this.hooks = hooks
  }

  get size (): number {
    return this.members.size
  }

  get seqCount (): number {
    return this.seqs.size
  }

  get (peer: PeerId | string): MemberState | undefined {
    return this.members.get(peer.toString())
  }

  /** the members as the app sees them: copies, with `authenticated` for an open authenticated connection */
  snapshot (): RealmMember[] {
    return [...this.members.values()].map(state => ({
      peerId: state.peerId,
      addrs: [...state.addrs],
      relays: [...state.relays],
      natType: state.natType,
      lastSeen: state.lastSeen,
      authenticated: state.connections.size > 0
    }))
  }

  values (): IterableIterator<MemberState> {
    return this.members.values()
  }

  isAuthenticated (connection: Connection): boolean {
    return this.members.get(connection.remotePeer.toString())?.connections.has(connection.id) === true
  }

  /** holds at least one authenticated, open connection to this node */
  isConnected (peer: PeerId): boolean {
    return (this.members.get(peer.toString())?.connections.size ?? 0) > 0
  }

  /** some member holds an authenticated, open connection to this node */
  anyConnected (): boolean {
    for (const state of this.members.values()) {
      if (state.connections.size > 0) {
        return true
      }
    }
    return false
  }

  seqOf (peer: PeerId): SeqEntry | undefined {
    return this.seqs.get(peer.toString())
  }

  /** the connection passed auth, proving `seq` as the floor of the peer's announcements */
  authenticated (connection: Connection, seq: bigint): void {
    const peer = connection.remotePeer
    const key = peer.toString()
    const entry = this.seqs.get(key)
    this.remember(key, { ...entry, floor: entry?.floor == null || seq > entry.floor ? seq : entry.floor })
    const state = this.members.get(key)
    if (state != null) {
      state.connections.add(connection.id)
      state.lastSeen = this.clock.now()
      return
    }
    this.add({ peerId: peer, addrs: [], relays: [], natType: 'unknown', lastSeen: this.clock.now(), connections: new Set([connection.id]) }, true)
  }

  /** the ids of the member's authenticated connections */
  connectionsOf (peer: PeerId): string[] {
    return [...this.members.get(peer.toString())?.connections ?? []]
  }

  connectionClosed (peer: PeerId, connectionId: string): void {
    const state = this.members.get(peer.toString())
    if (state?.connections.delete(connectionId) === true) {
      state.lastSeen = this.clock.now()
    }
  }

  /** an announcement passed every check: the member joins, is updated, or leaves */
  announced (from: PeerId, announcement: { seq: bigint, leaving: boolean, natType: string, signedPeerRecord: Uint8Array }, addrs: Multiaddr[], relays: Multiaddr[]): void {
    const key = from.toString()
    this.remember(key, { ...this.seqs.get(key), seq: announcement.seq, record: announcement.signedPeerRecord, addrs })
    if (announcement.leaving) {
      this.remove(from, 'left')
      return
    }
    const state = this.members.get(key)
    if (state == null) {
      this.add({ peerId: from, addrs, relays, natType: announcement.natType, lastSeen: this.clock.now(), connections: new Set() }, false)
      return
    }
    const changed = !sameAddrs(state.addrs, addrs) || !sameAddrs(state.relays, relays) || state.natType !== announcement.natType
    Object.assign(state, { addrs, relays, natType: announcement.natType, lastSeen: this.clock.now() })
    if (changed) {
      this.hooks.updated(from)
    }
  }

  remove (peer: PeerId, reason: RealmMemberLeftReason): void {
    if (this.members.delete(peer.toString())) {
      this.hooks.left(peer, reason)
    }
  }

  /** expires the silent, unconnected members, and forgets the seqs past their retention */
  sweep (memberTtl: number): void {
    const now = this.clock.now()
    const liveness = [...this.members.entries()].map(([id, state]) => ({ id, lastSeen: state.lastSeen, connected: state.connections.size > 0 }))
    for (const id of expiredMembers(liveness, now, memberTtl)) {
      const state = this.members.get(id)
      if (state != null) {
        this.remove(state.peerId, 'expired')
      }
    }
    for (const [id, entry] of this.seqs) {
      // only after keepUntil: at keepUntil itself, an announcement issued `skew` ahead is still acceptable
      if (entry.keepUntil < now && !this.members.has(id)) {
        this.seqs.delete(id)
      }
    }
  }

  /** every member leaves with `reason`; the seqs are kept unless `forget` */
  clear (reason: RealmMemberLeftReason | undefined, forget: boolean): void {
    for (const state of [...this.members.values()]) {
      if (reason == null) {
        this.members.delete(state.peerId.toString())
      } else {
        this.remove(state.peerId, reason)
      }
    }
    if (forget) {
      this.seqs.clear()
    }
  }

  private add (state: MemberState, met: boolean): void {
    this.members.set(state.peerId.toString(), state)
    this.hooks.joined(state, met)
  }

  /** most recently updated last, so the oldest goes first when the table is full */
  private remember (key: string, entry: Omit<SeqEntry, 'keepUntil'>): void {
    setBounded(this.seqs, key, { ...entry, keepUntil: this.clock.now() + this.retention }, MAX_SEQ_ENTRIES)
  }
}

function sameAddrs (a: Multiaddr[], b: Multiaddr[]): boolean {
  return a.length === b.length && a.every((addr, i) => addr.equals(b[i]))
}
