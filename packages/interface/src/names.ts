/** Peer-store tag names holdfast services set and honour. Protect = a connection-manager protection under the tag. */
export const TAGS = {
  /** an authenticated member of the app's realm */
  realmMember: 'realm-member',
  /** a peer kad-dht needs for routing */
  dhtRouting: 'dht-routing',
  /** a relay this node holds a reservation on */
  relayActive: 'relay-active',
  /** a relayed connection kept open as backup after a direct upgrade */
  relayBackup: 'relay-backup',
  /** peers the app itself protects */
  appProtected: 'app-protected'
} as const

export type HoldfastTag = typeof TAGS[keyof typeof TAGS]

/** libp2p service capabilities (`serviceCapabilities` / `serviceDependencies`) of the holdfast services */
export const CAPABILITIES = {
  cleanupBroadcaster: '@holdfast/cleanup-broadcaster',
  connectionManager: '@holdfast/connection-manager',
  pathSelector: '@holdfast/path-selector',
  reconnector: '@holdfast/reconnector',
  networkSupervisor: '@holdfast/network-supervisor',
  realm: '@holdfast/realm'
} as const

/** How a connection reaches the peer */
export type PathKind = 'direct' | 'relayed'

/** Which path carries a peer's traffic */
export type PathMode = 'relay-only' | 'direct-primary' | 'fallback'

/**
 * Where each holdfast service drops a peer's state during a cleanup. The broadcaster runs its
 * `onCleanup` layers in ascending order, top-down: what the app sees first, the transport last.
 * An app's own layers go first (`app`), so they still find the peer in the realm and the
 * path selector.
 */
export const CLEANUP_ORDER = {
  app: 100,
  realm: 200,
  reconnector: 300,
  pathSelector: 400,
  connectionManager: 500
} as const
