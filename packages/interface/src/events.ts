/**
 * The closed, typed map of every event a holdfast service publishes through the
 * cleanup broadcaster. One subscription sees them all.
 */

import type { PathKind, PathMode } from './names.ts'
import type { NetworkCleanupReason, NetworkEvent, RecoveryAction, ReconnectReason } from './network.ts'
import type { PeerId } from '@libp2p/interface'

/** Why a peer's cleanup ran */
export type CleanupReason =
  /** the last connection to the peer closed */
  | 'peer-disconnected'
  /** the reconnector gave up on the peer */
  | 'reconnect-gave-up'
  /** a path restart (re-dial, upgrade retry) failed */
  | 'restart-failed'
  /** the app asked, for one peer */
  | 'manual'
  /** the broadcaster is stopping */
  | 'shutdown'
  /** the network supervisor saw the network go away: dials in flight to unconnected peers are aborted */
  | 'network-offline'
  /** the app asked to drop every connection (network supervisor's `cleanup-connections`) */
  | NetworkCleanupReason
  /** the first half of a network supervisor's force-reconnect: why every connection is being re-made */
  | ReconnectReason

export interface LayerReport {
  layer: string
  ok: boolean
  ms: number
  error?: string
}

export interface CleanupReport {
  peer: PeerId
  reason: CleanupReason
  /** `track`ed promises rejected with `ConnectionClosedError` */
  pendingRejected: number
  /** in-flight `dial`s aborted */
  dialsAborted: number
  /** connections this cleanup closed (only when the trigger asks for it) */
  connectionsClosed: number
  layers: LayerReport[]
  durationMs: number
}

export type ConnectionDirection = 'inbound' | 'outbound'

export interface HoldfastEvents {
  // cleanup-broadcaster
  'connection:state': { peer: PeerId, connectionId: string, state: 'open' | 'closing' | 'closed', direction: ConnectionDirection, path: PathKind }
  'connection:closed': { peer: PeerId, connectionId: string, path: PathKind, reason?: string }
  'connection:replaced': { peer: PeerId, oldConnectionId: string, newConnectionId: string }
  'peer:gone': { peer: PeerId, reason: CleanupReason }
  'peer:ready': { peer: PeerId, conditions: string[] }
  'peer:cleaned': { peer: PeerId, reason: CleanupReason, report: CleanupReport }
  'restart:started': { peer: PeerId }
  'restart:completed': { peer: PeerId, success: boolean, error?: string }

  // connection-manager
  'trim:started': { connections: number }
  'trim:completed': { closed: PeerId[], before: number, after: number, durationMs: number, shortfall: number }
  'limit:exceeded': { direction: ConnectionDirection, peer: PeerId }
  /** a trim announces each closed peer once, in closing order, when its closes have settled; idle and limit closes are announced as they start */
  'connection:closed-by-manager': { peer: PeerId, reason: 'trim' | 'idle' | 'limit' }

  // path-selector
  'path:changed': { peer: PeerId, from: PathMode | undefined, to: PathMode, best: PathKind }
  'path:upgraded': { peer: PeerId, durationMs: number }
  'path:fallback': { peer: PeerId }
  'relay:reservation-lost': { relay: PeerId }
  'relay:reservation-restored': { relay: PeerId, attempts: number, downtimeMs: number }

  // reconnector
  'peer:held': { peer: PeerId }
  'peer:reconnecting': { peer: PeerId, attempt: number, delayMs: number }
  'peer:recovered': { peer: PeerId, downtimeMs: number, attempts: number, how: 'returned' | 'reconnected' }
  /** `cleaned-up`: a cleanup for `user-logout`, `app-terminating` or `manual` let go of the peer */
  'peer:removed': { peer: PeerId, reason: 'attempts-exhausted' | 'hold-expired' | 'unwatched' | 'cleaned-up' }
  'peer:online': { peer: PeerId }
  'peer:offline': { peer: PeerId }

  // network-supervisor
  'network:batch': { events: NetworkEvent[], action: RecoveryAction }
  'network:action': { action: RecoveryAction, success: boolean, error?: string, durationMs: number }

  // realm
  'member:joined': { peer: PeerId }
  'member:updated': { peer: PeerId }
  'member:left': { peer: PeerId, reason: 'left' | 'expired' | 'auth-failed' }
}

export type HoldfastEventType = keyof HoldfastEvents

/**
 * Every event type, at run time. Typed as a record over `HoldfastEvents` so adding an event
 * to the map without listing it here does not compile.
 */
const EVENT_TYPES: Record<HoldfastEventType, true> = {
  'connection:state': true,
  'connection:closed': true,
  'connection:replaced': true,
  'peer:gone': true,
  'peer:ready': true,
  'peer:cleaned': true,
  'restart:started': true,
  'restart:completed': true,
  'trim:started': true,
  'trim:completed': true,
  'limit:exceeded': true,
  'connection:closed-by-manager': true,
  'path:changed': true,
  'path:upgraded': true,
  'path:fallback': true,
  'relay:reservation-lost': true,
  'relay:reservation-restored': true,
  'peer:held': true,
  'peer:reconnecting': true,
  'peer:recovered': true,
  'peer:removed': true,
  'peer:online': true,
  'peer:offline': true,
  'network:batch': true,
  'network:action': true,
  'member:joined': true,
  'member:updated': true,
  'member:left': true
}

export const HOLDFAST_EVENT_TYPES: readonly HoldfastEventType[] = Object.freeze(Object.keys(EVENT_TYPES) as HoldfastEventType[])

export function isHoldfastEventType (type: unknown): type is HoldfastEventType {
  return typeof type === 'string' && Object.hasOwn(EVENT_TYPES, type)
}

/** One published event as subscribers see it */
export interface HoldfastEvent<K extends HoldfastEventType = HoldfastEventType> {
  readonly type: K
  readonly detail: HoldfastEvents[K]
  /** `clock.now()` at publish time */
  readonly time: number
}

/** The union of every event, discriminated by `type` (what a `'*'` subscriber receives) */
export type AnyHoldfastEvent = { [K in HoldfastEventType]: HoldfastEvent<K> }[HoldfastEventType]
