import { createNode, expectNoLeaks, onceEvent, stopAll } from '@holdfast/test-utils'
import { peerIdFromString } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { isNode } from 'wherearewe'
import { cleanupBroadcaster } from '../src/index.ts'
import type { CleanupBroadcasterInit } from '../src/index.ts'
import type { CleanupBroadcaster, HoldfastEvents, HoldfastEventType } from '@holdfast/interface'
import type { TransportKind } from '@holdfast/test-utils'
import type { Libp2p, PeerId } from '@libp2p/interface'

export type Node = Libp2p<{ broadcaster: CleanupBroadcaster }>

// TCP on 127.0.0.1 in Node; browsers have no TCP, so there the memory transport alone
export const transports: TransportKind[] = isNode ? ['memory', 'tcp'] : ['memory']

/** A peer no test node ever connects to */
export const stranger: PeerId = peerIdFromString('12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5')

export async function withBroadcaster (transport: TransportKind = 'memory', init?: CleanupBroadcasterInit): Promise<Node> {
  return createNode({ transport, services: { broadcaster: cleanupBroadcaster(init) } }) as unknown as Promise<Node>
}

/** Work that only ends when its signal aborts, rejecting with the signal's reason */
export const untilAborted = async (signal: AbortSignal): Promise<never> => new Promise((_resolve, reject) => {
  signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
})

/** Collects rejection names and never lets a rejection go unhandled */
export async function settled (promises: Array<Promise<unknown>>): Promise<Array<string | 'fulfilled'>> {
  return Promise.all(promises.map(async p => p.then(() => 'fulfilled' as const, (err: Error) => err.name)))
}

/** Resolves with the next event of that type the broadcaster publishes */
export async function nextEvent<K extends HoldfastEventType> (broadcaster: CleanupBroadcaster, type: K, filter: (detail: HoldfastEvents[K]) => boolean = () => true): Promise<HoldfastEvents[K]> {
  return onceEvent(broadcaster, type, filter)
}

/** Resolves with the reason a signal aborted (or had aborted) with */
export async function abortReason (signal: AbortSignal): Promise<unknown> {
  return new Promise(resolve => {
    if (signal.aborted) {
      resolve(signal.reason)
      return
    }
    signal.addEventListener('abort', () => { resolve(signal.reason) }, { once: true })
  })
}

/** After a scenario, with the nodes still running: nothing in flight, no timer, no listener on a caller's signal */
export function expectNothingInFlight (broadcaster: CleanupBroadcaster): void {
  expect(broadcaster.internalSizes()).to.include({ pending: 0, timers: 0, listeners: 0, waiters: 0 })
}

/**
 * One row of a bad-input table: the call must fail with that error name (thrown, or rejected
 * for the async APIs) and leave `internalSizes()` as it was.
 */
export async function expectRefused (broadcaster: CleanupBroadcaster, name: string, call: () => unknown, what: string): Promise<void> {
  const before = broadcaster.internalSizes()
  let error: unknown
  try {
    await call()
  } catch (err) {
    error = err
  }
  expect(error, what).to.have.property('name', name)
  expect(broadcaster.internalSizes(), what).to.deep.equal(before)
}

export interface RealNodes {
  /** with a broadcaster */
  a: Node
  b: Libp2p
  c: Libp2p
}

/**
 * Three nodes made fresh for each test of the calling `describe`: A with a broadcaster, B and
 * C plain. After each test nothing may be in flight on A, and once the three stopped, A's
 * broadcaster must hold nothing at all.
 */
export function realNodes (transport: TransportKind): RealNodes {
  const nodes = {} as unknown as RealNodes
  beforeEach(async () => {
    nodes.a = await withBroadcaster(transport)
    nodes.b = await createNode({ transport })
    nodes.c = await createNode({ transport })
  })
  afterEach(async () => {
    expectNothingInFlight(nodes.a.services.broadcaster)
    await stopAll([nodes.a, nodes.b, nodes.c])
    expectNoLeaks(nodes.a.services.broadcaster)
  })
  return nodes
}

/** Replaces A with a node whose broadcaster has this init (the old A stops) */
export async function restartA (nodes: RealNodes, transport: TransportKind, init: CleanupBroadcasterInit): Promise<Node> {
  await nodes.a.stop()
  nodes.a = await withBroadcaster(transport, init)
  return nodes.a
}

/** Values that are not peer IDs, for the bad-input tables */
export const junkPeers: unknown[] = [undefined, null, 'QmPeer', 42, {}, { toString: () => 'x' }]
