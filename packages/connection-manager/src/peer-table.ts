/**
 * The connected peers, one entry per peer with its open connections, and the counts the
 * watermarks and the per-direction limits read. The table records and closes connections; the
 * manager decides when.
 */

import { PROTECTED_STORE_TAG } from './constants.ts'
import type { DecayState, TagRecord } from './decay.ts'
import type { Connection, Logger, Peer, PeerId, PeerStore } from '@libp2p/interface'

/** One open connection. `idleSince`: first sweep (or the open) that saw it without streams */
export interface ConnEntry {
  readonly connection: Connection
  idleSince: number | undefined
  /** the manager called close() on it and waits for libp2p's connection:close */
  closing: boolean
}

/** One connected peer; dropped after its last connection (tags go with it, as in go-libp2p) */
export interface PeerEntry {
  readonly peer: PeerId
  readonly key: string
  readonly firstSeen: number
  /** replaced, never pushed to, so the backing store is exactly as long as needed */
  conns: readonly ConnEntry[]
  /** connections not being closed by the manager */
  open: number
  /** the peer is protected: kept here so a trim of thousands of peers reads no map */
  protected: boolean
  inbound: number
  outbound: number
  tags: Map<string, number> | undefined
  decaying: Map<TagRecord, DecayState> | undefined
  /** the peer's peer-store tags (our protection mirror excluded), from peer:update */
  storeTags: Record<string, number> | undefined
  /** their sum, kept with them: the trim's hot path reads only this for most peers */
  storeSum: number
  /**
   * The peer's cleanup ran while it was still connected: its last close drops the entry, as no
   * other cleanup comes for this visit
   */
  cleaned: boolean
}

export class PeerTable {
  private readonly entries = new Map<string, PeerEntry>()
  private readonly peerStore: PeerStore
  /** tracked connections, those being closed included */
  connections = 0
  inbound = 0
  outbound = 0
  /** connections the manager is closing */
  closing = 0
  /** entries with at least one connection (an entry can outlive its connections until the peer's cleanup) */
  connected = 0

  constructor (peerStore: PeerStore) {
    this.peerStore = peerStore
  }

  get size (): number {
    return this.entries.size
  }

  /** open connections, not counting those the manager is closing */
  get live (): number {
    return this.connections - this.closing
  }

  get (peer: PeerId): PeerEntry | undefined {
    return this.entries.get(peer.toString())
  }

  values (): IterableIterator<PeerEntry> {
    return this.entries.values()
  }

  /**
   * Records an open connection; returns its peer entry, or undefined if it was known already.
   * A peer back before the cleanup of its last visit reached the manager starts a new visit:
   * a new grace period and no tags.
   */
  track (connection: Connection, now: number, isProtected: (key: string) => boolean): PeerEntry | undefined {
    const key = connection.remotePeer.toString()
    let entry = this.entries.get(key)
    if (entry != null && indexOfConnection(entry.conns, connection) !== -1) {
      return undefined
    }
    if (entry == null || entry.conns.length === 0) {
      entry = { peer: connection.remotePeer, key, firstSeen: now, conns: [], open: 0, protected: isProtected(key), inbound: 0, outbound: 0, tags: undefined, decaying: undefined, storeTags: undefined, storeSum: 0, cleaned: false }
      this.entries.set(key, entry)
      this.loadStoreTags(entry)
    }
    if (entry.conns.length === 0) {
      this.connected++
    }
    entry.conns = [...entry.conns, { connection, idleSince: connection.streams.length === 0 ? now : undefined, closing: false }]
    entry.open++
    this.connections++
    if (connection.direction === 'inbound') {
      entry.inbound++
      this.inbound++
    } else {
      entry.outbound++
      this.outbound++
    }
    return entry
  }

  /** Forgets a closed connection; returns its peer's entry, or undefined if the connection was not tracked */
  untrack (connection: Connection): PeerEntry | undefined {
    const entry = this.entries.get(connection.remotePeer.toString())
    const index = entry == null ? -1 : indexOfConnection(entry.conns, connection)
    if (entry == null || index === -1) {
      return undefined
    }
    this.release(entry, index)
    return entry
  }

  /**
   * Forgets the peer's connections libp2p has closed. libp2p announces a peer's disconnect from
   * inside the `connection:close` of its last connection, so a cleanup can reach the manager
   * before that event does.
   */
  releaseClosed (entry: PeerEntry): void {
    for (let i = entry.conns.length - 1; i >= 0; i--) {
      const { status } = entry.conns[i].connection
      if (status !== 'open' && status !== 'closing') {
        this.release(entry, i)
      }
    }
  }

  /** Drops an entry that has no connection left */
  delete (entry: PeerEntry): void {
    if (this.entries.get(entry.key) === entry && entry.conns.length === 0) {
      this.entries.delete(entry.key)
    }
  }

  /** The node is stopping: it closes the connections, and we keep no record of them */
  clear (): void {
    this.entries.clear()
    this.connections = this.inbound = this.outbound = this.closing = this.connected = 0
  }

  /** Starts closing a connection (aborting it if the close fails); `settled` runs when either is done */
  closeConnection (entry: PeerEntry, conn: ConnEntry, settled: () => void, log: Logger): void {
    conn.closing = true
    entry.open--
    this.closing++
    const { connection } = conn
    connection.close().then(settled, (err: Error) => {
      try {
        connection.abort(err)
      } catch (abortErr) {
        log.error('aborting %p after its close failed threw - %e', entry.peer, abortErr)
      }
      settled()
    })
  }

  private release (entry: PeerEntry, index: number): void {
    const conn = entry.conns[index]
    entry.conns = entry.conns.toSpliced(index, 1)
    this.connections--
    if (conn.closing) {
      this.closing--
    } else {
      entry.open--
    }
    if (conn.connection.direction === 'inbound') {
      entry.inbound--
      this.inbound--
    } else {
      entry.outbound--
      this.outbound--
    }
    if (entry.conns.length === 0) {
      this.connected--
    }
  }

  /** Reads the peer-store tags of a new peer; later changes arrive as peer:update */
  private loadStoreTags (entry: PeerEntry): void {
    this.peerStore.get(entry.peer).then(peer => {
      if (this.entries.get(entry.key) === entry && entry.storeTags === undefined) {
        setStoreTags(entry, peer)
      }
    }, () => {})
  }
}

export function indexOfConnection (conns: readonly ConnEntry[], connection: Connection): number {
  for (let i = 0; i < conns.length; i++) {
    if (conns[i].connection === connection) {
      return i
    }
  }
  return -1
}

/** `streamsOf(entry) > 0` without reading every connection's streams */
export function hasStreams (entry: PeerEntry): boolean {
  const { conns } = entry
  for (let i = 0; i < conns.length; i++) {
    if (conns[i].connection.streams.length > 0) {
      return true
    }
  }
  return false
}

export function streamsOf (entry: PeerEntry): number {
  let streams = 0
  for (const conn of entry.conns) {
    streams += conn.connection.streams.length
  }
  return streams
}

/** Keeps the peer's peer-store tags, but the mirror of our own protection, and their sum */
export function setStoreTags (entry: PeerEntry, peer: Pick<Peer, 'tags'>): void {
  let tags: Record<string, number> | undefined
  let sum = 0
  for (const [name, tag] of peer.tags) {
    if (name !== PROTECTED_STORE_TAG) {
      tags ??= {}
      tags[name] = tag.value
      sum += tag.value
    }
  }
  entry.storeTags = tags
  entry.storeSum = sum
}
