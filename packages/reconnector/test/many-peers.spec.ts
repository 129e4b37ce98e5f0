import { createFakeClock, expectNoLeaks, seededRandom } from '@holdfast/test-utils'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { TypedEventEmitter } from 'main-event'
import { defaults, reconnector } from '../src/index.ts'
import { delayBand } from '../src/policy.ts'
import type { ReconnectorComponents } from '../src/index.ts'
import type { Libp2pEvents, PeerId } from '@libp2p/interface'

const PEERS = 1_000
const BUCKET_MS = 100

/**
 * Components standing in for a libp2p node: an event bus the test drives with peer:connect /
 * peer:disconnect, no connections, dials that fail, an empty peer store. 1,000 real nodes on
 * one machine would take minutes; the reconnector only reads these events and calls.
 */
async function syntheticComponents (): Promise<{ components: ReconnectorComponents, events: TypedEventEmitter<Libp2pEvents> }> {
  const events = new TypedEventEmitter<Libp2pEvents>()
  const notFound = Object.assign(new Error('Not found'), { name: 'NotFoundError' })
  const components = {
    peerId: peerIdFromPrivateKey(await generateKeyPair('Ed25519')),
    events,
    logger: defaultLogger(),
    connectionManager: {
      getConnections: () => [],
      openConnection: async () => { throw new Error('unreachable') }
    },
    peerStore: {
      get: async () => { throw notFound },
      merge: async () => { throw new Error('not expected') },
      all: async () => []
    }
  } as unknown as ReconnectorComponents
  return { components, events }
}

describe('1,000 peers dropped at once (synthetic libp2p events: 1,000 real nodes are too heavy)', () => {
  it('first attempts spread over the whole jitter band (no 100 ms bucket > 2x the mean), on one clock timer', async () => {
    const clock = createFakeClock()
    const dialsAt: number[] = []
    const { components, events } = await syntheticComponents()
    const service = reconnector({
      clock,
      random: seededRandom(1_000),
      // the spread of the band itself: with the yield, the peers whose IDs sort below ours would start 1 s later
      crossingDelay: 0,
      watch: () => true,
      dial: async () => {
        dialsAt.push(clock.now())
        throw new Error('unreachable')
      }
    })(components) as ReturnType<ReturnType<typeof reconnector>> & { start(): Promise<void>, stop(): Promise<void> }
    await service.start()

    const peers: PeerId[] = await Promise.all(Array.from({ length: PEERS }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
    for (const peer of peers) {
      events.safeDispatchEvent('peer:connect', { detail: peer })
    }
    const droppedAt = clock.now()
    for (const peer of peers) {
      events.safeDispatchEvent('peer:disconnect', { detail: peer })
    }
    expect(service.held()).to.have.lengthOf(PEERS)
    expect(clock.countTimers()).to.equal(1)
    expect(service.internalSizes()).to.include({ held: PEERS, timers: 1 })

    const [min, max] = delayBand(0, defaults)
    await clock.tickAsync(defaults.toleranceWindow + max)
    expect(dialsAt).to.have.lengthOf(PEERS)
    const offsets = dialsAt.map(at => at - droppedAt - defaults.toleranceWindow)
    expect(Math.min(...offsets)).to.be.at.least(min)
    expect(Math.max(...offsets)).to.be.at.most(max)

    const buckets = new Array<number>(Math.ceil((max - min) / BUCKET_MS)).fill(0)
    for (const offset of offsets) {
      buckets[Math.min(buckets.length - 1, Math.floor((offset - min) / BUCKET_MS))]++
    }
    const mean = PEERS / buckets.length
    expect(Math.max(...buckets), `buckets ${buckets.join(',')}`).to.be.at.most(2 * mean)
    expect(Math.min(...buckets), `buckets ${buckets.join(',')}`).to.be.greaterThan(0)
    // the second attempts are all scheduled, still on one timer
    expect(clock.countTimers()).to.equal(1)

    await service.stop()
    expectNoLeaks(service)
    expect(clock.countTimers()).to.equal(0)
  })
})
