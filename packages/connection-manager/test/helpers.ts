import { createNode } from '@holdfast/test-utils'
import { watermarkConnectionManager } from '../src/index.ts'
import type { ConnectionManagerEventDetails, ConnectionManagerEvents, WatermarkConnectionManagerInit, WatermarkConnectionManagerService } from '../src/index.ts'
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
export async function nextEvent<K extends keyof ConnectionManagerEvents> (hub: Hub, type: K, filter: (detail: ConnectionManagerEventDetails[K]) => boolean = () => true): Promise<ConnectionManagerEventDetails[K]> {
  const manager = hub.services.connections
  return new Promise(resolve => {
    const listener = (evt: ConnectionManagerEvents[K]): void => {
      if (filter(evt.detail)) {
        manager.removeEventListener(type, listener)
        resolve(evt.detail)
      }
    }
    manager.addEventListener(type, listener)
  })
}

/** Collects every event of a type into an array, until the returned function is called */
export function collect<K extends keyof ConnectionManagerEvents> (hub: Hub, type: K): { events: Array<ConnectionManagerEventDetails[K]>, stop(): void } {
  const manager = hub.services.connections
  const events: Array<ConnectionManagerEventDetails[K]> = []
  const listener = (evt: ConnectionManagerEvents[K]): void => { events.push(evt.detail as ConnectionManagerEventDetails[K]) }
  manager.addEventListener(type, listener)
  return { events, stop: () => { manager.removeEventListener(type, listener) } }
}
