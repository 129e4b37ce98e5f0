/**
 * The contract of `@holdfast/reconnector`: a lost peer is held through short drops, redialled
 * with backoff and jitter, and given up cleanly. A peer the app lets go of (a cleanup for
 * `user-logout`, `app-terminating` or a `manual` cleanup of that peer) is removed, not
 * reconnected.
 */

import type { Introspectable } from './broadcaster.ts'
import type { HoldfastEvents } from './events.ts'
import type { PeerId, TypedEventTarget } from '@libp2p/interface'

export type ReconnectorEventType = 'peer:held' | 'peer:reconnecting' | 'peer:recovered' | 'peer:removed' | 'peer:online' | 'peer:offline'

/** The reconnector's events, with the details declared in `HoldfastEvents` */
export type ReconnectorEvents = {
  [K in ReconnectorEventType]: CustomEvent<HoldfastEvents[K]>
}

export interface ResumeOptions {
  /** start every held peer's backoff (and its `maxAttempts`) from scratch */
  resetBackoff?: boolean
}

/** A peer as the reconnector sees it */
export type ReconnectorPeerState = 'connected' | 'held' | 'reconnecting' | 'removed'

export interface Reconnector extends TypedEventTarget<ReconnectorEvents>, Introspectable {
  /** a held peer's state, `connected` for a watched connected peer, undefined for any other peer */
  state(peer: PeerId): ReconnectorPeerState | undefined
  /** hold this peer when it disconnects, whatever the predicate and the protections say */
  watch(peer: PeerId): void
  /** undo `watch(peer)`; a held peer no longer watched at all is removed (`unwatched`) */
  unwatch(peer: PeerId): void
  /** the peers held or reconnecting now */
  held(): PeerId[]
  /** the network is known to be offline: no attempt is made or spent until `resume()` */
  pause(): void
  /** the network is back: every held peer gets one attempt within the first delay's jitter band */
  resume(opts?: ResumeOptions): void
  /** one attempt now for the peer (or every held peer), outside the schedule; resolves when they settled */
  reconnectNow(peer?: PeerId): Promise<void>
}
