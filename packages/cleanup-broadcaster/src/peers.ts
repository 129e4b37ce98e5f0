/**
 * One entry per peer that has connections, work in flight, readiness waiters or a closing
 * mark, and the table that drops an entry the moment none of these is left.
 */

import { abortOwner, countWork, notConnected } from './pending.ts'
import type { ConnectionEntry, WorkOwner } from './pending.ts'
import type { ReadyWaiter } from './readiness.ts'
import type { CleanupReport } from '@holdfast/interface'
import type { PeerId } from '@libp2p/interface'

/**
 * Kept under 512 bytes per connected peer (the broadcaster-state benchmark checks it): every
 * field is set in the literal so V8 keeps them in-object, arrays are replaced rather than
 * grown, and `connected` is implied by `connections` instead of stored.
 */
export interface PeerEntry extends WorkOwner {
  readonly peer: PeerId
  /** replaced, never pushed to, so the backing store is exactly as long as needed */
  connections: readonly ConnectionEntry[]
  /** readiness conditions marked since the peer connected, other than `connected` */
  marked?: readonly string[]
  ready: boolean
  waiters?: Set<ReadyWaiter>
  /** new work fails fast with PeerClosingError */
  closing: boolean
  closingTimer?: unknown
  /** the running cleanup, so concurrent triggers share one */
  cleaning?: Promise<CleanupReport>
  /** a trigger that arrived during the cleanup asked for the connections to be closed */
  closeRequested: boolean
  /** `peer:gone` was published for the current disconnect */
  gone: boolean
}

export class PeerTable {
  private readonly entries = new Map<string, PeerEntry>()

  get size (): number {
    return this.entries.size
  }

  get (peer: PeerId): PeerEntry | undefined {
    return this.entries.get(peer.toString())
  }

  values (): MapIterator<PeerEntry> {
    return this.entries.values()
  }

  /** The peer's entry, made when missing */
  entryFor (peer: PeerId): PeerEntry {
    const key = peer.toString()
    let entry = this.entries.get(key)
    if (entry == null) {
      entry = {
        peer,
        connections: [],
        marked: undefined,
        ready: false,
        waiters: undefined,
        closing: false,
        closingTimer: undefined,
        cleaning: undefined,
        closeRequested: false,
        gone: false,
        controller: undefined,
        work: undefined
      }
      this.entries.set(key, entry)
    }
    return entry
  }

  /**
   * Drops the entry once nothing refers to the peer any more, so nothing is left per peer.
   * A peer dropped here has no connection and nothing in flight: its signal aborts now, since
   * nothing could abort it later.
   */
  release (entry: PeerEntry): void {
    if (entry.closing || entry.cleaning != null || entry.connections.length > 0 ||
        countWork(entry) > 0 || (entry.waiters?.size ?? 0) > 0) {
      return
    }
    const key = entry.peer.toString()
    if (this.entries.get(key) === entry) {
      this.entries.delete(key)
    }
    abortOwner(entry, notConnected(entry.peer))
  }

  /** Forgets every entry (the service stopped) */
  clear (): void {
    this.entries.clear()
  }
}
