import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { createFakeClock, createNode, expectNoLeaks, onceEvent, stopAll } from '@holdfast/test-utils'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { expect } from 'aegir/chai'
import { reconnector } from '../src/index.ts'
import type { Reconnector, ReconnectorEvents, ReconnectorEventType, ReconnectorInit } from '../src/index.ts'
import type { CleanupBroadcaster, HoldfastEvents } from '@holdfast/interface'
import type { FakeClock } from '@holdfast/test-utils'
import type { AbortOptions, Libp2p, PeerId, PrivateKey } from '@libp2p/interface'

export type Node = Libp2p<{ reconnector: Reconnector, broadcaster?: CleanupBroadcaster }>

export interface DialRecord {
  peer: string
  /** fake time the dial started */
  at: number
  /** fake time its outcome was seen */
  settledAt?: number
  ok?: boolean
}

/** The node under test: the reconnector on a fake clock, every dial it makes recorded */
export interface Harness {
  node: Node
  clock: FakeClock
  dials: DialRecord[]
  /** every event the reconnector dispatched, in order */
  events: Array<{ type: ReconnectorEventType, detail: any, at: number }>
  /** advance fake time in steps, letting each real dial settle before the next step */
  advance(ms: number, until?: () => boolean): Promise<void>
  count(type: ReconnectorEventType): number
  dialsTo(peer: PeerId): DialRecord[]
}

const TYPES: ReconnectorEventType[] = ['peer:held', 'peer:reconnecting', 'peer:recovered', 'peer:removed', 'peer:online', 'peer:offline']

/** What a started reconnector holds by design: its listeners on the node and its layer of the broadcaster's cleanup chain */
export const WHILE_STARTED = ['nodeListeners', 'cleanupLayers']

/** Fake-time step: small enough that the time a dial failed is known to within it */
export const STEP_MS = 25

/**
 * Which end of a pair yields (`crossingDelay`) depends on random peer IDs: the harness turns it
 * off so the timing tests start from a known first band; the crossing test turns it on.
 */
export async function createHarness (init: ReconnectorInit = {}, opts: { broadcaster?: boolean, services?: Record<string, (components: any) => unknown> } = {}): Promise<Harness> {
  const clock = createFakeClock()
  const dials: DialRecord[] = []
  const pending = new Set<Promise<unknown>>()
  const holder: { node?: Node } = {}
  const dial = async (peer: PeerId, options: AbortOptions): Promise<unknown> => {
    const record: DialRecord = { peer: peer.toString(), at: clock.now() }
    dials.push(record)
    const node = holder.node as Node
    const dialing = node.services.broadcaster != null ? node.services.broadcaster.dial(peer, options) : node.dial(peer, options)
    const settled = dialing.then(() => { record.ok = true }, () => { record.ok = false }).finally(() => {
      record.settledAt = clock.now()
      pending.delete(settled)
    })
    pending.add(settled)
    return dialing
  }
  const services: Record<string, (components: any) => unknown> = { ...opts.services, reconnector: reconnector({ clock, dial, crossingDelay: 0, ...init }) }
  if (opts.broadcaster !== false) {
    services.broadcaster = cleanupBroadcaster()
  }
  const node = await createNode({ services }) as unknown as Node
  holder.node = node
  const events: Harness['events'] = []
  for (const type of TYPES) {
    node.services.reconnector.addEventListener(type, (event: ReconnectorEvents[typeof type]) => {
      events.push({ type, detail: event.detail, at: clock.now() })
    })
  }
  return {
    node,
    clock,
    dials,
    events,
    async advance (ms, until = () => false) {
      for (let done = 0; done < ms && !until(); done += STEP_MS) {
        await clock.tickAsync(Math.min(STEP_MS, ms - done))
        while (pending.size > 0) {
          await Promise.all([...pending])
        }
      }
    },
    count: (type) => events.filter(e => e.type === type).length,
    dialsTo: (peer) => dials.filter(d => d.peer === peer.toString())
  }
}

let addresses = 0

/** A remote peer with a fixed identity and address, so it can be stopped and come back as itself */
export interface Remote {
  key: PrivateKey
  address: string
  node: Libp2p
  peerId: PeerId
}

export async function createRemote (): Promise<Remote> {
  const key = await generateKeyPair('Ed25519')
  const address = `/memory/reconnector-test-${process.pid}-${++addresses}`
  const node = await createNode({ config: { privateKey: key, addresses: { listen: [address] } } })
  return { key, address, node, peerId: node.peerId }
}

/** The same peer (key and address) started again after a stop */
export async function restart (remote: Remote): Promise<void> {
  remote.node = await createNode({ config: { privateKey: remote.key, addresses: { listen: [remote.address] } } })
}

export function detailsOf<K extends ReconnectorEventType> (h: Harness, type: K): Array<HoldfastEvents[K]> {
  return h.events.filter(e => e.type === type).map(e => e.detail)
}

/** Stops the remote and resolves once the harness node saw it disconnect */
export async function goAway (h: Harness, remote: Remote): Promise<void> {
  const gone = onceEvent(h.node, 'peer:disconnect', p => p.equals(remote.peerId))
  await remote.node.stop()
  await gone
}

/** The remote hangs up on the harness node (it stays reachable) */
export async function hangUp (h: Harness, remote: Libp2p): Promise<void> {
  const gone = onceEvent(h.node, 'peer:disconnect', p => p.equals(remote.peerId))
  await remote.hangUp(h.node.peerId)
  await gone
}

/** Stops `nodes`, then the harness node: after the stop nothing is left but the app's explicit watch list */
export async function stopAndCheck (h: Harness | undefined, nodes: Libp2p[]): Promise<void> {
  await stopAll(nodes)
  if (h != null) {
    await h.node.stop()
    expectNoLeaks(h.node.services.reconnector, ['watched'])
    expect(h.clock.countTimers()).to.equal(0)
  }
}
