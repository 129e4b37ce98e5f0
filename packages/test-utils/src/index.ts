/**
 * @packageDocumentation
 *
 * Private test helpers for the holdfast packages: real libp2p nodes wired over
 * `@libp2p/memory` or TCP on 127.0.0.1, a fake clock implementing holdfast's `Clock`, and
 * leak checks over a service's `internalSizes()`.
 */

export { createNode, createNodes, connect, disconnect, stopAll, onceEvent } from './nodes.ts'
export type { NodeOptions, TransportKind } from './nodes.ts'
export { createFakeClock } from './clock.ts'
export type { FakeClock } from './clock.ts'
export { expectNoLeaks, leftovers } from './leaks.ts'
