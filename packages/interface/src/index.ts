/**
 * @packageDocumentation
 *
 * Shared types of the Holdfast services: the `HoldfastEvents` map every service publishes
 * through the cleanup broadcaster, the error classes (match on `err.name`), peer-store tag
 * names, service capability names, path types, the injectable `Clock`, and the contract of
 * the cleanup broadcaster.
 *
 * @example
 *
 * ```TypeScript
 * import { TAGS, CAPABILITIES } from '@holdfast/interface'
 * import type { CleanupBroadcaster } from '@holdfast/interface'
 *
 * class MyService {
 *   readonly [serviceDependencies] = [CAPABILITIES.cleanupBroadcaster]
 *
 *   constructor (components: { broadcaster: CleanupBroadcaster }) {
 *     components.broadcaster.subscribe('peer:gone', ({ detail }) => {
 *       // drop what you hold for detail.peer
 *     })
 *   }
 * }
 * ```
 */

export * from './errors.ts'
export * from './clock.ts'
export * from './names.ts'
export * from './network.ts'
export * from './events.ts'
export type * from './broadcaster.ts'
