import { defaults as connectionManagerDefaults, IDLE_PRESETS } from '@holdfast/connection-manager'

export type Preset = 'mobile' | 'desktop' | 'server' | 'test'

export const PRESET_NAMES: readonly Preset[] = ['mobile', 'desktop', 'server', 'test']

/**
 * libp2p's own pruner stays an emergency cap well above our `highWater`, so normal trimming
 * (with grace and protection) is the holdfast connection manager's: connection-manager README,
 * "Beside libp2p's built-in connection manager", setting 1 (`highWater * 2`).
 */
export const MAX_CONNECTIONS = connectionManagerDefaults.highWater * 2

/** Per-preset knobs that are not the services' own presets (those take the name directly). */
export interface PresetSettings {
  /** ms, idle connections closed by the holdfast connection manager */
  idleTimeout: number
  /** ms, gossipsub heartbeat: how fast the realm's announcement mesh forms */
  gossipHeartbeat: number
  /** ms, realm announcements; `undefined` keeps the realm's default (10 s) */
  announceInterval?: number
  /** ms, one WebRTC upgrade attempt; `undefined` keeps the path selector's default (15 s) */
  upgradeTimeoutMs?: number
  /** inbound connections per second from one host (libp2p's `inboundConnectionThreshold`); `undefined` keeps libp2p's 5 */
  inboundConnectionThreshold?: number
}

export const PRESETS: Record<Preset, PresetSettings> = {
  mobile: { idleTimeout: IDLE_PRESETS.mobile, gossipHeartbeat: 1_000 },
  desktop: { idleTimeout: IDLE_PRESETS.desktop, gossipHeartbeat: 1_000 },
  server: { idleTimeout: IDLE_PRESETS.server, gossipHeartbeat: 1_000 },
  // loopback tests and the demo: the mesh forms in a few 100 ms heartbeats, members re-announce every 2 s
  // loopback WebRTC now and then stalls an attempt for seconds (path-selector README, Numbers): retry after 3 s
  // on loopback every peer is the same host: libp2p's 5 inbound connections per second per host would refuse a few at once
  test: { idleTimeout: IDLE_PRESETS.test, gossipHeartbeat: 100, announceInterval: 2_000, upgradeTimeoutMs: 3_000, inboundConnectionThreshold: 1_000 }
}

/**
 * Relayed connections on a realm relay carry the relay backup the path selector keeps after a
 * WebRTC upgrade: libp2p's default 2 min / 128 KiB limit would close it. Only authenticated
 * members get a reservation (the realm's gate), so the limit is off on a realm relay.
 */
export const REALM_RELAY_RESERVATIONS = { maxReservations: 128, applyDefaultLimit: false }

/**
 * Three pingers share `/ipfs/ping` on every connection: libp2p's connection monitor, the path
 * selector's heartbeat and the network supervisor's path validation. libp2p's ping allows one
 * outbound stream per connection (and two inbound), so one pinger's probe would be refused
 * while another's is in flight and read as a dead path.
 */
export const PING_STREAMS = { maxOutboundStreams: 3, maxInboundStreams: 6 }
