/** Platform network and app-lifecycle types of the network supervisor, shared because events carry them. */

export type NetworkAvailability = 'unknown' | 'available' | 'unavailable'

export interface NetworkSnapshot {
  /** increases with every snapshot an adapter produces; only the latest one decides availability */
  sequence: number
  availability: NetworkAvailability
  transport: { wifi: boolean, cellular: boolean, ethernet: boolean, vpn: boolean, other: boolean }
  isExpensive: boolean
  isConstrained: boolean
}

export type AppLifecycleState = { state: 'background' } | { state: 'foreground', backgroundDurationMs: number }

/** Why the app asks to drop every connection */
export type NetworkCleanupReason = 'app-terminating' | 'user-logout' | 'stale-connection-suspected' | 'manual-reset'

export type ReconnectReason = 'network-path-changed' | 'long-background' | 'probe-failed' | 'manual-reconnect' | 'stale-connection-suspected'

export type NetworkEvent =
  | { type: 'network-path-changed', snapshot: NetworkSnapshot }
  | { type: 'app-lifecycle-changed', state: AppLifecycleState }
  | { type: 'cleanup-connections', reason: NetworkCleanupReason }
  | { type: 'force-reconnect', reason: ReconnectReason }

export type RecoveryAction = 'noop' | 'offline' | 'probe' | 'restore' | 'cleanup-only' | 'force-reconnect'

export interface NetworkEventResult {
  event: NetworkEvent
  success: boolean
  error?: string
  durationMs: number
}
