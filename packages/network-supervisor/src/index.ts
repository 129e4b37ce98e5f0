/**
 * @packageDocumentation
 *
 * The platform knows first when the network changes: Wi-Fi drops, cellular takes over, a VPN
 * re-attaches, the app goes to the background and comes back a minute later. Those signals
 * arrive in bursts. This service collects a burst for a settle window (400 ms), picks one
 * recovery action for the whole batch (`offline`, `probe`, `restore`, `cleanup-only`,
 * `force-reconnect` or nothing), runs it once on the node, and answers every caller with the
 * action's outcome. Adapters feed it from the browser (`online`/`offline`, the Network
 * Information API, page visibility) and from Node (`os.networkInterfaces()`); React Native,
 * Electron or Capacitor apps call `handle()` from their own platform hooks.
 *
 * @example
 *
 * ```TypeScript
 * import { noise } from '@chainsafe/libp2p-noise'
 * import { yamux } from '@chainsafe/libp2p-yamux'
 * import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
 * import { networkSupervisor } from '@holdfast/network-supervisor'
 * import { reconnector } from '@holdfast/reconnector'
 * import { identify } from '@libp2p/identify'
 * import { ping } from '@libp2p/ping'
 * import { webSockets } from '@libp2p/websockets'
 * import { createLibp2p } from 'libp2p'
 *
 * const node = await createLibp2p({
 *   transports: [webSockets()],
 *   connectionEncrypters: [noise()],
 *   streamMuxers: [yamux()],
 *   services: {
 *     identify: identify(),
 *     ping: ping(),                     // used by probe and restore
 *     broadcaster: cleanupBroadcaster(), // optional: aborts dials, closes everything, one event stream
 *     reconnector: reconnector(),       // optional: paused while offline, resumed on restore
 *     // in a browser the browser adapter is on by default, in Node the Node adapter
 *     network: networkSupervisor()
 *   }
 * })
 *
 * node.services.network.addEventListener('network:action', ({ detail }) => {
 *   console.info(detail.action, detail.success ? 'ok' : detail.error, `${detail.durationMs} ms`)
 * })
 *
 * // a manual host (React Native, Electron, Capacitor) reports its platform's own signals
 * await node.services.network.appLifecycleChanged({ state: 'foreground', backgroundDurationMs: 45_000 })
 * await node.services.network.cleanupConnections('user-logout')
 * ```
 *
 * The optional services are found by capability from `start()` on: the cleanup broadcaster
 * (`@holdfast/cleanup-broadcaster`), the reconnector, the path selector, the realm and
 * libp2p's ping service (`@libp2p/ping`). Each step that needs one is skipped when it is
 * absent. The events `network:batch` and `network:action` are dispatched on the service and
 * published through the broadcaster when there is one.
 */

import { autoAdapters } from './adapters/auto.ts'
import { NetworkSupervisor as NetworkSupervisorClass } from './supervisor.ts'
import type { Clock, NetworkCleanupReason, NetworkEvent, NetworkSnapshot, NetworkSupervisor, ReconnectReason } from '@holdfast/interface'
import type { AbortOptions, ComponentLogger, Logger, Metrics, PeerStore } from '@libp2p/interface'
import type { AddressManager, ConnectionManager } from '@libp2p/interface-internal'

export { defaults } from './constants.ts'
export { selectRecoveryAction } from './policy.ts'
export type { PlanOptions } from './policy.ts'
export { browserAdapter } from './adapters/browser.ts'
export type { BrowserAdapterInit, BrowserGlobals } from './adapters/browser.ts'
export { SupervisorStoppedError, RecoveryStepError } from './errors.ts'
export type { StepFailure } from './errors.ts'
export type { NetworkSupervisor, NetworkSupervisorEvents, NetworkSupervisorEventType, NetworkSupervisorStats, NetworkSnapshot, NetworkAvailability, AppLifecycleState, NetworkCleanupReason, ReconnectReason, NetworkEvent, RecoveryAction, NetworkEventResult } from '@holdfast/interface'

/**
 * What runs a batch's action. Every method gets the run's signal, aborted when the
 * supervisor stops: honour it, `stop()` waits for the running action.
 */
export interface NetworkEventProcessor {
  offline(options?: AbortOptions): Promise<void>
  probe(options?: AbortOptions): Promise<void>
  restore(options?: AbortOptions): Promise<void>
  cleanupOnly(reason: NetworkCleanupReason, options?: AbortOptions): Promise<void>
  forceReconnect(reason: ReconnectReason, options?: ForceReconnectOptions): Promise<void>
}

export interface ForceReconnectOptions extends AbortOptions {
  /**
   * Set when the batch held a `cleanup-connections` followed by a `force-reconnect` (a
   * cleanup, then a reconnect): the reason the cleanup half closes with
   */
  cleanupReason?: NetworkCleanupReason
}

/** Where an adapter delivers what it sees */
export interface AdapterSink {
  /** a platform event; batched like any other */
  event(event: NetworkEvent): void
  /**
   * The adapter's first reading at start: becomes `snapshot()` without an action, unless it
   * says the network is unavailable (then it is handled as an event, so `offline` runs)
   */
  baseline(snapshot: NetworkSnapshot): void
}

export interface AdapterContext {
  clock: Clock
  log: Logger
}

/** A source of platform events (browser, Node, or the app's own) */
export interface NetworkAdapter {
  readonly name: string
  start(sink: AdapterSink, context: AdapterContext): void
  stop(): void
  /** timers and listeners it holds, summed into the supervisor's `internalSizes()` */
  internalSizes?(): { timers: number, listeners: number }
}

export interface NetworkSupervisorInit {
  /**
   * Events within this long (ms) of a batch's first event join it.
   *
   * @default 400
   */
  settleWindow?: number

  /**
   * A caller waits at most this long (ms) for its result, then gets a `TimeoutError`; the
   * action still finishes.
   *
   * @default 5000
   */
  resultTimeout?: number

  /**
   * Each ping of a probe or a restore's path validation gets this long (ms).
   *
   * @default 1000
   */
  probeTimeout?: number

  /**
   * A foreground after at least this long (ms) in the background forces a reconnect; a
   * shorter one probes.
   *
   * @default 30000
   */
  longBackgroundThreshold?: number

  /**
   * A custom processor's offline, probe or restore is skipped when the same kind started
   * less than this long (ms) ago. The default processor is never debounced. 0: off.
   *
   * @default 2000
   */
  debounceWindow?: number

  /**
   * Runs the actions.
   *
   * @default the default processor, acting on the node
   */
  processor?: NetworkEventProcessor

  /**
   * Platform event sources. `[]`: manual only (`handle()`).
   *
   * @default the browser adapter in a browser (package.json `browser` field), the Node adapter in Node
   */
  adapters?: NetworkAdapter[]

  /** @default the system clock */
  clock?: Clock
}

export interface NetworkSupervisorComponents {
  logger: ComponentLogger
  connectionManager: ConnectionManager
  peerStore: PeerStore
  addressManager: AddressManager
  metrics?: Metrics
}

export function networkSupervisor (init: NetworkSupervisorInit = {}): (components: NetworkSupervisorComponents) => NetworkSupervisor {
  return (components) => new NetworkSupervisorClass(components, { ...init, adapters: init.adapters ?? autoAdapters() })
}
