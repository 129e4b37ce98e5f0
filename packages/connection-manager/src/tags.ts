/**
 * What a peer is worth: protections (by tag, kept until the app removes them), tag values and
 * decaying tags (kept with the connected peer), and the score input built from them.
 */

import { checkDuration, checkNumber, checkPeerId, InvalidArgumentError } from '@holdfast/interface'
import { PROTECTED_STORE_TAG, PROTECTED_STORE_TAG_VALUE } from './constants.ts'
import { applyDecay, bumpValue } from './decay.ts'
import { streamsOf } from './peer-table.ts'
import type { TagRecord } from './decay.ts'
import type { PeerEntry, PeerTable } from './peer-table.ts'
import type { BumpFn, Clock, DecayFn, DecayingTag, PeerConnInfo, ScoreFn, ScoreInput } from '@holdfast/interface'
import type { Logger, PeerId, PeerStore } from '@libp2p/interface'

interface Protection {
  readonly peer: PeerId
  readonly tags: Set<string>
}

export interface TagsInit {
  table: PeerTable
  peerStore: PeerStore
  clock: Clock
  log: Logger
  /** the manager is started: only then is a protection mirrored into the peer store */
  isStarted(): boolean
  /** the peer's last protection went: a trim may now close it */
  unprotected(): void
}

export class Tags {
  private readonly protections = new Map<string, Protection>()
  private readonly decayingTags = new Map<string, TagRecord>()
  private readonly init: TagsInit
  /** peer-store writes of the protection mirror not yet settled */
  storeWrites = 0

  constructor (init: TagsInit) {
    this.init = init
  }

  /** peers holding at least one protection, connected or not */
  get protectedPeers (): number {
    return this.protections.size
  }

  /** decaying tags registered and not closed */
  get registered (): number {
    return this.decayingTags.size
  }

  // ---------------------------------------------------------------- protection

  protect (peer: PeerId, tag: string): void {
    checkPeerId(peer)
    checkName(tag, 'tag')
    const key = peer.toString()
    let protection = this.protections.get(key)
    if (protection == null) {
      protection = { peer, tags: new Set() }
      this.protections.set(key, protection)
      this.setProtected(peer, true)
      if (this.init.isStarted()) {
        this.mirror(peer, true)
      }
    }
    protection.tags.add(tag)
  }

  unprotect (peer: PeerId, tag: string): boolean {
    checkPeerId(peer)
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
    this.setProtected(peer, false)
    if (this.init.isStarted()) {
      this.mirror(peer, false)
    }
    this.init.unprotected()
    return false
  }

  isProtected (peer: PeerId, tag?: string): boolean {
    checkPeerId(peer)
    const protection = this.protections.get(peer.toString())
    return protection != null && (tag === undefined || protection.tags.has(tag))
  }

  /** by peer ID string, for the hot paths that have one */
  hasProtection (key: string): boolean {
    return this.protections.has(key)
  }

  /**
   * Mirrors every protection as a high peer-store tag (`on`), so libp2p's own pruner keeps the
   * peer last, or removes the mirror: protections are the app's and survive a restart, their
   * mirror does not, so a persistent peer store never keeps a tag nobody will remove.
   */
  async mirrorAll (on: boolean): Promise<void> {
    await Promise.all([...this.protections.values()].map(async ({ peer }) => this.mirror(peer, on)))
  }

  private setProtected (peer: PeerId, on: boolean): void {
    const entry = this.init.table.get(peer)
    if (entry != null) {
      entry.protected = on
    }
  }

  private async mirror (peer: PeerId, on: boolean): Promise<void> {
    this.storeWrites++
    return this.init.peerStore.merge(peer, { tags: { [PROTECTED_STORE_TAG]: on ? { value: PROTECTED_STORE_TAG_VALUE } : undefined } })
      .then(() => {}, err => { this.init.log.error('could not %s the protection tag of %p - %e', on ? 'set' : 'remove', peer, err) })
      .finally(() => { this.storeWrites-- })
  }

  // ---------------------------------------------------------------- tags

  /** Tags live with the connected peer; tagging a peer that is not connected does nothing */
  tagPeer (peer: PeerId, tag: string, value: number): void {
    checkPeerId(peer)
    checkName(tag, 'tag')
    checkNumber(value, 'value', 'argument')
    const entry = this.init.table.get(peer)
    if (entry == null) {
      this.init.log.trace('tagPeer %s on %p ignored: not connected', tag, peer)
      return
    }
    entry.tags ??= new Map()
    entry.tags.set(tag, value)
  }

  untagPeer (peer: PeerId, tag: string): void {
    checkPeerId(peer)
    checkName(tag, 'tag')
    const entry = this.init.table.get(peer)
    entry?.tags?.delete(tag)
    if (entry?.tags?.size === 0) {
      entry.tags = undefined
    }
  }

  upsertTag (peer: PeerId, tag: string, update: (old: number) => number): void {
    checkPeerId(peer)
    checkName(tag, 'tag')
    if (typeof update !== 'function') {
      throw new InvalidArgumentError('update must be a function', 'update')
    }
    const entry = this.init.table.get(peer)
    if (entry == null) {
      return
    }
    const value = checkNumber(update(entry.tags?.get(tag) ?? 0), 'the value returned by update', 'argument')
    entry.tags ??= new Map()
    entry.tags.set(tag, value)
  }

  // ---------------------------------------------------------------- decaying tags

  registerDecayingTag (name: string, interval: number, decay: DecayFn, bump: BumpFn): DecayingTag {
    checkName(name, 'name')
    if (this.decayingTags.has(name)) {
      throw new InvalidArgumentError(`a decaying tag named "${name}" is already registered`, 'name')
    }
    checkDuration(interval, 'interval', 'argument')
    if (typeof decay !== 'function' || typeof bump !== 'function') {
      throw new InvalidArgumentError('decay and bump must be functions', typeof decay !== 'function' ? 'decay' : 'bump')
    }
    const tag: DecayingTag = {
      name,
      interval,
      bump: (peer, delta) => { this.bumpDecaying(record, peer, delta) },
      remove: (peer) => {
        checkPeerId(peer)
        this.dropDecaying(this.init.table.get(peer), record)
      },
      close: () => {
        if (this.decayingTags.get(name) !== record) {
          return
        }
        this.decayingTags.delete(name)
        for (const entry of this.init.table.values()) {
          this.dropDecaying(entry, record)
        }
      }
    }
    const record: TagRecord = { tag, origin: this.init.clock.now(), decay, bump }
    this.decayingTags.set(name, record)
    return tag
  }

  private bumpDecaying (record: TagRecord, peer: PeerId, delta: number): void {
    checkPeerId(peer)
    checkNumber(delta, 'delta', 'argument')
    if (this.decayingTags.get(record.tag.name) !== record) {
      throw new InvalidArgumentError(`the decaying tag "${record.tag.name}" is closed`, 'tag')
    }
    const entry = this.init.table.get(peer)
    if (entry == null) {
      return
    }
    const now = this.init.clock.now()
    let state = entry.decaying?.get(record)
    if (state != null && !applyDecay(record, peer, state, now)) {
      state = undefined
    }
    state ??= { added: now, lastBump: now, value: 0, visited: now }
    state.value = checkNumber(bumpValue(record, peer, state, delta, now), 'the value returned by bump', 'argument')
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

  // ---------------------------------------------------------------- what a peer is worth

  /**
   * The sum of a peer's current tag values, decaying tags brought up to `now`. A `tagPeer` or
   * decaying tag with the name of a peer-store tag replaces it, as in `info().tags`.
   */
  tagSum (entry: PeerEntry, now: number): number {
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

  /** The score input and score of a peer, decaying tags brought up to `now` */
  describe (entry: PeerEntry, now: number, gracePeriod: number, score: ScoreFn): PeerConnInfo {
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
      inGrace: now - entry.firstSeen < gracePeriod,
      connections: entry.conns.length,
      inbound: entry.inbound,
      outbound: entry.outbound,
      streams: streamsOf(entry)
    }
    const value = score(input)
    return { ...input, score: Number.isFinite(value) ? value : 0 }
  }

  private hasDecaying (entry: PeerEntry, name: string): boolean {
    if (entry.decaying == null) {
      return false
    }
    const record = this.decayingTags.get(name)
    return record != null && entry.decaying.has(record)
  }
}

function checkName (name: unknown, argument: string): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(`${argument} must be a non-empty string`, argument)
  }
}
