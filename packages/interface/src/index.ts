/**
 * @packageDocumentation
 *
 * The contracts every holdfast service shares, so one can depend on another's shape without
 * its implementation:
 *
 * - `HoldfastEvents`: the closed, typed map of every event published through the cleanup broadcaster, with `HOLDFAST_EVENT_TYPES` / `isHoldfastEventType` at run time;
 * - errors with a stable `name` (match on `err.name`, never `instanceof`): `ConnectionClosedError`, `PeerClosingError`, `AddressRequiredError`, `NotRealmMemberError`, `RealmAuthError`, `NoAvailablePathError`, `ConnectionLimitError`, `InvalidConfigError`, `InvalidArgumentError`, `UnknownEventTypeError`, `TimeoutError`, and libp2p's `AbortError` re-exported as the one "you cancelled this" error;
 * - `TAGS` (`realm-member`, `dht-routing`, `relay-active`, `relay-backup`, `app-protected`) and `CAPABILITIES` (`@holdfast/<package>`);
 * - `PathKind` (`direct` | `relayed`) and `PathMode` (`relay-only` | `direct-primary` | `fallback`);
 * - the network-supervisor's snapshot and event types;
 * - `Clock` and `systemClock`: all holdfast time goes through an injectable clock;
 * - the contracts of the services (`CleanupBroadcaster`, `WatermarkConnectionManager`, `PathSelector`, `Reconnector`, `Realm`, `NetworkSupervisor`), so one service uses another by its interface alone;
 * - the broadcaster's `Middleware`, and `Introspectable.internalSizes()`, which every service implements so tests can check that nothing is left behind;
 * - the building blocks every service shares, so each does a thing one way: `emit` (an event to the service's listeners and through the broadcaster), the input checks (`checkDuration`, capped at 2³¹−1 ms, `checkPeerId`, `checkSignal`, `checkOptions`), the circuit-address helpers (`isCircuitAddr`, `relayAddrOf`, `relayPeerOf`, `circuitAddr`), `registerService` / `findService`, `EventListeners` (the node listeners a service adds on start and removes on stop, a handler's throw logged), `CLEANUP_ORDER` (where each service's cleanup layer runs), and the node's one gater chain (`addGaterLayer`).
 *
 * @example
 *
 * ```TypeScript
 * import { CAPABILITIES, findService } from '@holdfast/interface'
 * import type { CleanupBroadcaster } from '@holdfast/interface'
 *
 * // a libp2p service that uses the broadcaster when the node has one: found by capability, as
 * // every holdfast service finds the others, whatever key it was configured under
 * class MyService {
 *   private readonly components: object
 *   private unsubscribe?: () => void
 *
 *   constructor (components: object) {
 *     this.components = components
 *   }
 *
 *   start (): void {
 *     this.unsubscribe = findService<CleanupBroadcaster>(this.components, CAPABILITIES.cleanupBroadcaster)
 *       ?.subscribe('peer:gone', ({ detail }) => {
 *         // drop what you hold for detail.peer
 *       })
 *   }
 *
 *   stop (): void {
 *     this.unsubscribe?.()
 *   }
 * }
 * ```
 */

export * from './errors.ts'
export * from './clock.ts'
export * from './names.ts'
export * from './network.ts'
export * from './events.ts'
export * from './services.ts'
export * from './gater.ts'
export * from './validate.ts'
export * from './emit.ts'
export * from './multiaddr.ts'
export * from './listeners.ts'
export type * from './broadcaster.ts'
export type * from './connection-manager.ts'
export type * from './path-selector.ts'
export type * from './reconnector.ts'
export type * from './realm.ts'
export type * from './network-supervisor.ts'
