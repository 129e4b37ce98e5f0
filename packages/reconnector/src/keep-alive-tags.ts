/**
 * Keeps libp2p's own keep-alive reconnect off the peers the reconnector holds: their
 * `keep-alive*` peer-store tags are parked under another name while they are watched, put back
 * when they no longer are, and dropped when the reconnector gives up on them. The plans are
 * pure (policy.ts); this writes them to the peer store and counts the writes in flight.
 */

import { PARKED_TAG_PREFIX } from './constants.ts'
import { dropParkedTags, parkKeepAliveTags, restoreKeepAliveTags } from './policy.ts'
import type { TagPlan } from './policy.ts'
import type { Logger, PeerId, PeerStore } from '@libp2p/interface'

type Plan = (tags: ReadonlyMap<string, { value: number }>) => TagPlan | undefined

export class KeepAliveTags {
  private readonly peerStore: PeerStore
  private readonly log: Logger
  private readonly writes = new Set<Promise<void>>()

  constructor (peerStore: PeerStore, log: Logger) {
    this.peerStore = peerStore
    this.log = log
  }

  /** peer-store writes in flight */
  get size (): number {
    return this.writes.size
  }

  /** hides the peer's `keep-alive*` tags from libp2p's reconnect queue */
  park (peer: PeerId): void {
    this.rewrite(peer, parkKeepAliveTags)
  }

  /** puts the peer's parked tags back under their own names */
  restore (peer: PeerId): void {
    this.rewrite(peer, restoreKeepAliveTags)
  }

  /** deletes the peer's parked tags, as libp2p deletes `keep-alive*` tags when it gives up */
  drop (peer: PeerId): void {
    this.rewrite(peer, dropParkedTags)
  }

  /** resolves when every write started so far (and any started meanwhile) is done */
  async settled (): Promise<void> {
    while (this.writes.size > 0) {
      await Promise.all(this.writes)
    }
  }

  /** Tags left parked by a run that ended without `stop()` (a crash) go back */
  async restoreLeftovers (): Promise<void> {
    try {
      const parked = await this.peerStore.all({
        filters: [peer => [...peer.tags.keys()].some(name => name.startsWith(PARKED_TAG_PREFIX))]
      })
      for (const peer of parked) {
        this.restore(peer.id)
      }
      await this.settled()
    } catch (err) {
      this.log.error('restoring parked keep-alive tags failed - %e', err)
    }
  }

  /** Rewrites the peer's tags by `plan`; counted until written */
  private rewrite (peer: PeerId, plan: Plan): void {
    const write = (async () => {
      const record = await this.peerStore.get(peer).catch(() => undefined)
      const tags = record == null ? undefined : plan(record.tags)
      if (tags !== undefined) {
        await this.peerStore.merge(peer, { tags })
      }
    })().catch(err => { this.log.error('rewriting the keep-alive tags of %p failed - %e', peer, err) })
    this.writes.add(write)
    void write.finally(() => { this.writes.delete(write) })
  }
}
