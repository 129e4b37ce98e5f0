/**
 * The contract of `@holdfast/network-supervisor`: platform network and app-lifecycle events,
 * batched over a settle window, one recovery action per batch.
 */

import type { InternalSizes, Introspectable } from './broadcaster.ts'
import type { HoldfastEvents } from './events.ts'
import type { AppLifecycleState, NetworkCleanupReason, NetworkEvent, NetworkEventResult, NetworkSnapshot, RecoveryAction, ReconnectReason } from './network.ts'
import type { AbortOptions, TypedEventTarget } from '@libp2p/interface'

export type NetworkSupervisorEventType = 'network:batch' | 'network:action'

/** The supervisor's events, with the details declared in `HoldfastEvents` */
export type NetworkSupervisorEvents = {
  [K in NetworkSupervisorEventType]: CustomEvent<HoldfastEvents[K]>
}

export interface NetworkSupervisorStats {
  /** well-formed events accepted */
  events: number
  batches: number
  /** actions run, by kind (noop included; a debounced one counts under `debounced` instead) */
  actions: Partial<Record<RecoveryAction, number>>
  failures: number
  /** malformed events rejected with `InvalidArgumentError` */
  invalidEvents: number
  /** callers answered with `TimeoutError` */
  timeouts: number
  debounced: number
}

export interface NetworkSupervisor extends TypedEventTarget<NetworkSupervisorEvents>, Introspectable {
  handle(event: NetworkEvent, options?: AbortOptions): Promise<NetworkEventResult>
  networkPathChanged(snapshot: NetworkSnapshot, options?: AbortOptions): Promise<NetworkEventResult>
  appLifecycleChanged(state: AppLifecycleState, options?: AbortOptions): Promise<NetworkEventResult>
  cleanupConnections(reason: NetworkCleanupReason, options?: AbortOptions): Promise<NetworkEventResult>
  forceReconnect(reason: ReconnectReason, options?: AbortOptions): Promise<NetworkEventResult>
  /** the newest accepted snapshot (an adapter's baseline, or the last batch's) */
  snapshot(): NetworkSnapshot | undefined
  stats(): NetworkSupervisorStats
  internalSizes(): InternalSizes
}
