import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { createNode } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { watermarkConnectionManager } from '../src/index.ts'
import { HubFixture } from './helpers.ts'
import type { Hub } from './helpers.ts'
import type { WatermarkConnectionManagerInit } from '../src/index.ts'
import type { CleanupBroadcaster, HoldfastEvents } from '@holdfast/interface'

describe('the manager beside a cleanup broadcaster (real nodes, memory transport)', () => {
  const f = new HubFixture()

  /** The hub with a cleanup broadcaster and the manager */
  async function hubWithBroadcaster (init: WatermarkConnectionManagerInit = {}): Promise<{ hub: Hub, broadcaster: CleanupBroadcaster }> {
    const node = await createNode({
      services: { broadcaster: cleanupBroadcaster(), connections: watermarkConnectionManager({ clock: f.clock, ...init }) },
      config: { connectionMonitor: { enabled: false } }
    })
    const hub = f.adopt(node as unknown as Hub)
    return { hub, broadcaster: (node.services as { broadcaster: CleanupBroadcaster }).broadcaster }
  }

  it('publishes its events through the cleanup broadcaster', async () => {
    const { broadcaster } = await hubWithBroadcaster({ lowWater: 1, highWater: 2, gracePeriod: 0 })
    const seen: Array<keyof HoldfastEvents> = []
    broadcaster.subscribe('*', (event) => { seen.push(event.type) })
    const completed = new Promise<HoldfastEvents['trim:completed']>(resolve => broadcaster.subscribe('trim:completed', ({ detail }) => { resolve(detail) }))
    await f.dialIn(3)
    const detail = await completed
    expect(detail.after).to.equal(1)
    expect(seen).to.include.members(['trim:started', 'trim:completed', 'connection:closed-by-manager'])
  })
})
