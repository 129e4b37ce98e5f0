import { connect, createFakeClock, createNode, createNodes, expectNoLeaks, onceEvent, stopAll } from '@holdfast/test-utils'
import { watermarkConnectionManager } from '../src/index.ts'
import type { ConnectionManagerEvents, ConnectionManagerEventType, WatermarkConnectionManagerInit, WatermarkConnectionManagerService } from '../src/index.ts'
import type { HoldfastEvents } from '@holdfast/interface'
import type { FakeClock } from '@holdfast/test-utils'
import type { Libp2p } from '@libp2p/interface'
import type { Libp2pOptions } from 'libp2p'

export type Hub = Libp2p<{ connections: WatermarkConnectionManagerService }>

/**
 * A node with the manager. The connection monitor is off: its pings are streams that would
 * move scores (+20) at random moments of a test.
 */
export async function createHub (init: WatermarkConnectionManagerInit, config: Partial<Libp2pOptions> = {}): Promise<Hub> {
  return createNode({
    services: { connections: watermarkConnectionManager(init) },
    config: { connectionMonitor: { enabled: false }, ...config }
  }) as unknown as Promise<Hub>
}

/** Resolves with the next event of that type the manager dispatches */
export async function nextEvent<K extends ConnectionManagerEventType> (hub: Hub, type: K, filter: (detail: HoldfastEvents[K]) => boolean = () => true): Promise<HoldfastEvents[K]> {
  return onceEvent(hub.services.connections, type, filter)
}

/** Collects every event of a type into an array, until the returned function is called */
export function collect<K extends ConnectionManagerEventType> (hub: Hub, type: K): { events: Array<HoldfastEvents[K]>, stop(): void } {
  const manager = hub.services.connections
  const events: Array<HoldfastEvents[K]> = []
  const listener = (evt: ConnectionManagerEvents[K]): void => { events.push(evt.detail) }
  manager.addEventListener(type, listener)
  return { events, stop: () => { manager.removeEventListener(type, listener) } }
}

/**
 * One hub per test on a fresh fake clock, with the nodes that dial it. Created inside a
 * `describe`: after each test every node is stopped and the manager must hold nothing but the
 * app's own protections and decaying tags.
 */
export class HubFixture {
  clock: FakeClock = createFakeClock()
  peers: Libp2p[] = []
  private current: Hub | undefined

  constructor () {
    beforeEach(() => {
      this.clock = createFakeClock()
    })
    afterEach(async () => {
      await stopAll([this.current, ...this.peers])
      if (this.current != null) {
        expectNoLeaks(this.current.services.connections, ['protected', 'decayingTags'])
      }
      this.current = undefined
      this.peers = []
    })
  }

  get hub (): Hub {
    if (this.current == null) {
      throw new Error('the test has no hub yet')
    }
    return this.current
  }

  /** Creates the hub on the fixture's clock and returns its services */
  async hubWith (init: WatermarkConnectionManagerInit, config: Partial<Libp2pOptions> = {}): Promise<Hub['services']> {
    return this.adopt(await createHub({ clock: this.clock, ...init }, config)).services
  }

  /** A hub the test built itself, stopped and checked like the others */
  adopt (hub: Hub): Hub {
    this.current = hub
    return hub
  }

  /** Nodes stopped with the hub after the test */
  async nodes (count: number): Promise<Libp2p[]> {
    const created = await createNodes(count)
    this.peers.push(...created)
    return created
  }

  /** `count` new nodes, each connected to the hub (they dial) */
  async dialIn (count: number): Promise<Libp2p[]> {
    const created = await this.nodes(count)
    for (const peer of created) {
      await connect(peer, this.hub)
    }
    return created
  }
}
