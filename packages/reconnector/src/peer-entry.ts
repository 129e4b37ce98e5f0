/** One watched peer, as the reconnector keeps it: connected, or lost and waiting in the deadline heap */

import type { HeapItem } from './deadline-heap.ts'
import type { PeerId } from '@libp2p/interface'

/** A dial of ours in flight for the peer */
export interface InFlightDial {
  readonly controller: AbortController
  /** settles when the outcome has gone through the state machine; never rejects */
  readonly done: Promise<void>
}

export interface PeerEntry extends HeapItem {
  readonly peer: PeerId
  readonly key: string
  state: 'connected' | 'held' | 'reconnecting'
  disconnectedAt: number
  windowEndsAt: number
  holdDeadline: number
  /** Infinity while a dial is in flight or none is scheduled (paused) */
  nextAttemptAt: number
  /** failed attempts that count toward maxAttempts */
  attempts: number
  /** dials made in this outage, reported by `peer:recovered` */
  dials: number
  dial?: InFlightDial
  /** a cleanup let go of the connected peer: its disconnect removes it instead of holding it */
  released: boolean
}

/** A connected peer, just adopted */
export function connectedEntry (peer: PeerId): PeerEntry {
  return {
    peer,
    key: peer.toString(),
    state: 'connected',
    disconnectedAt: 0,
    windowEndsAt: 0,
    holdDeadline: 0,
    nextAttemptAt: Number.POSITIVE_INFINITY,
    attempts: 0,
    dials: 0,
    dial: undefined,
    released: false,
    due: 0,
    heapIndex: -1
  }
}

/** Held or reconnecting: the peer is lost and the reconnector is bridging it */
export function isLost (entry: PeerEntry): boolean {
  return entry.state === 'held' || entry.state === 'reconnecting'
}
