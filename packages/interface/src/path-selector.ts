/**
 * The contract of `@holdfast/path-selector`: per-peer paths (direct and relayed), relay-first
 * connect with a direct upgrade in the background, fallback, and RTT measurements.
 */

import type { Introspectable } from './broadcaster.ts'
import type { HoldfastEvents } from './events.ts'
import type { PathKind, PathMode } from './names.ts'
import type { AbortOptions, Connection, PeerId, Stream, TypedEventTarget } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A path's health: `failing` after consecutive missed heartbeats, `closed` once its connection is gone */
export type PathStatus = 'active' | 'failing' | 'closed'

/** One connection to a peer, as `paths()` reports it (a snapshot) */
export interface Path {
  connectionId: string
  kind: PathKind
  /** the multiaddr protocol naming the transport: `tcp`, `ws`, `webrtc`, `p2p-circuit`, ... */
  transport: string
  remoteAddr: Multiaddr
  /** RTT average (EWMA), once measured */
  rttMs?: number
  successes: number
  /** consecutive failures since the last success */
  failures: number
  status: PathStatus
  /** clock time of the last success (or of the opening) */
  lastActive: number
  /** a direct path made through a relay (WebRTC over the relay, DCUtR) */
  holePunched: boolean
}

/** A measurement of the app's own, fed to `report()` */
export interface PathSample {
  /** a measured round trip, in ms */
  rttMs?: number
  success: boolean
}

export interface PathConnectOptions extends AbortOptions {
  /** the addresses to try; default: the peer store's */
  addrs?: Multiaddr[]
}

/** The events the path selector dispatches itself (and publishes through the broadcaster when present) */
export type PathSelectorEvents = {
  [K in 'path:changed' | 'path:upgraded' | 'path:fallback' | 'relay:reservation-lost' | 'relay:reservation-restored']: CustomEvent<HoldfastEvents[K]>
}

export interface PathSelector extends TypedEventTarget<PathSelectorEvents>, Introspectable {
  /** every open path to the peer, in the order they opened */
  paths(peer: PeerId): Path[]
  /** the path the peer's traffic uses */
  best(peer: PeerId): Path | undefined
  mode(peer: PeerId): PathMode | undefined
  /**
   * Relay addresses only: through the relay, then the upgrade in the background; direct only:
   * direct; both: raced, the first usable wins. Resolves once a stream could be opened on the
   * connection (a ping), with an already healthy path at once. With a cleanup broadcaster on
   * the node the dials go through it, so a cleanup of the peer aborts them.
   */
  connect(peer: PeerId, opts?: PathConnectOptions): Promise<Connection>
  /** on the path the path choice picks; on failure on its next pick among the others (relayed ones with `runOnLimitedConnection`) */
  openStream(peer: PeerId, protocols: string | string[], opts?: AbortOptions): Promise<Stream>
  /** feeds a measurement of the app's own into a path's RTT average and failure count */
  report(peer: PeerId, connectionId: string, sample: PathSample): void
  /**
   * tries a direct path now; true when the peer has one afterwards. Rejects when the caller
   * aborts, and when the peer is cleaned up meanwhile (with the cleanup's `ConnectionClosedError`
   * when the dial went through the cleanup broadcaster).
   */
  upgrade(peer: PeerId, opts?: AbortOptions): Promise<boolean>
}
