/**
 * @packageDocumentation
 *
 * A peer behind a NAT is first reached through a relay (`/p2p-circuit`); a direct path
 * (WebRTC through the relay's signalling, DCUtR, TCP, WebSockets) is faster and costs the relay
 * nothing. This service tracks every path to every peer (direct or relayed, transport, RTT
 * average, successes and failures, status), picks the one to use with a pure, allocation-free,
 * RTT-biased `selectPath` (pluggable: pass your own as the `selectPath` option), connects
 * relay-first and upgrades to WebRTC in the background while keeping the relayed connection as
 * a tagged, protected backup, falls back to it when the direct path dies (and retries the
 * upgrade), pings the paths in use per a keep-alive preset, and re-makes a relay reservation
 * that libp2p lost when its relay went away.
 *
 * With a `@holdfast/cleanup-broadcaster` on the node, every dial the service makes goes through
 * it, so a cleanup of the peer aborts the dial, and the cleanup drops what the service holds
 * for the peer.
 *
 * @example
 *
 * ```TypeScript
 * import { noise } from '@chainsafe/libp2p-noise'
 * import { yamux } from '@chainsafe/libp2p-yamux'
 * import { pathSelector } from '@holdfast/path-selector'
 * import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
 * import { identify } from '@libp2p/identify'
 * import { ping } from '@libp2p/ping'
 * import { webRTC } from '@libp2p/webrtc'
 * import { webSockets } from '@libp2p/websockets'
 * import { createLibp2p } from 'libp2p'
 *
 * const node = await createLibp2p({
 *   // a reservation on the relay, and WebRTC through it
 *   addresses: { listen: [`${relayAddr}/p2p-circuit`, '/webrtc'] },
 *   transports: [webSockets(), circuitRelayTransport(), webRTC()],
 *   connectionEncrypters: [noise()],
 *   streamMuxers: [yamux()],
 *   services: {
 *     identify: identify(),
 *     ping: ping(),
 *     paths: pathSelector({ preset: 'mobile' })
 *   }
 * })
 *
 * // relay first; the WebRTC upgrade follows in the background
 * await node.services.paths.connect(remotePeer, { addrs: [circuitAddrOfRemote] })
 * node.services.paths.addEventListener('path:changed', ({ detail }) => console.info(detail.to))
 *
 * // over the best path, falling back to the next one when it fails
 * const stream = await node.services.paths.openStream(remotePeer, '/my/proto/1.0.0')
 * ```
 */

import { PathSelector as PathSelectorClass } from './path-selector.ts'
import type { KeepAlivePreset, NatType, PresetName, SelectPath } from './policy.ts'
import type { Clock, PathSelector } from '@holdfast/interface'
import type { ComponentLogger, Libp2pEvents, Metrics, PeerId, PeerStore, TypedEventTarget } from '@libp2p/interface'
import type { AddressManager, ConnectionManager, TransportManager } from '@libp2p/interface-internal'

export { selectPath, natDecision } from './policy.ts'
export type { PathCandidate, SelectPath, NatType, NatDecision, KeepAlivePreset, PresetName } from './policy.ts'
export { PRESETS, RTT_SWITCHING_MIN_MS, defaults } from './constants.ts'
export type { InternalSizes, Path, PathSample, PathConnectOptions, PathSelector, PathSelectorEvents, PathStatus } from '@holdfast/interface'

export interface PathSelectorInit {
  /**
   * Keep-alive preset: heartbeat of the paths in use, keep-alive of the others.
   *
   * @default 'desktop'
   */
  preset?: PresetName | KeepAlivePreset

  /**
   * Try a direct path when only relayed ones exist.
   *
   * @default true
   */
  upgrade?: boolean

  /**
   * After an upgrade keep the relayed connection, tagged `relay-backup` and protected.
   *
   * @default true
   */
  keepRelayBackup?: boolean

  /**
   * EWMA weight of a new RTT sample.
   *
   * @default 0.2
   */
  rttAlpha?: number

  /**
   * Consecutive heartbeat or stream failures that mark a path failing.
   *
   * @default 2
   */
  failuresToDemote?: number

  /**
   * This node's NAT, for the NAT matrix.
   *
   * @default 'unknown'
   */
  localNat?: NatType

  /**
   * A remote peer's NAT, for the NAT matrix.
   *
   * @default () => 'unknown'
   */
  natOf?(peer: PeerId): NatType

  /**
   * The path choice: which of a peer's paths carries its traffic. It gets the peer's paths as
   * plain `PathCandidate`s (in the order they opened) and the path in use, and returns one of
   * them, or `undefined` for none. A choice that throws or returns anything but one of the
   * candidates is logged and replaced by the default's. Wrap the exported `selectPath` to
   * change one rule and keep the others.
   *
   * @default selectPath (rank first: direct, hole-punched, realm relay, any relay; then RTT, switching at 5 ms better)
   */
  selectPath?: SelectPath

  /**
   * ms before an upgrade attempt (or a relay re-dial of the reservation watchdog) counts as failed.
   *
   * @default 15000
   */
  upgradeTimeoutMs?: number

  /**
   * Upgrade attempts after a fallback before staying on the relay.
   *
   * @default 5
   */
  upgradeMaxAttempts?: number

  /**
   * First delay (ms) of the upgrade retry and of the reservation watchdog, doubling up to `retryMaxDelayMs`.
   *
   * @default 1000
   */
  retryInitialDelayMs?: number

  /**
   * The longest delay (ms) of the upgrade retry and of the reservation watchdog; at least `retryInitialDelayMs`.
   *
   * @default 60000
   */
  retryMaxDelayMs?: number

  /**
   * Where the service reads time and sets its timers; tests pass a fake one.
   *
   * @default the system clock
   */
  clock?: Clock
}

export interface PathSelectorComponents {
  peerId: PeerId
  events: TypedEventTarget<Libp2pEvents>
  connectionManager: ConnectionManager
  addressManager: AddressManager
  transportManager: TransportManager
  peerStore: PeerStore
  logger: ComponentLogger
  metrics?: Metrics
}

export function pathSelector (init: PathSelectorInit = {}): (components: PathSelectorComponents) => PathSelector {
  return (components) => new PathSelectorClass(components, init)
}
