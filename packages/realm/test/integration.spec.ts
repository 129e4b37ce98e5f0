import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { createGater, watermarkConnectionManager } from '@holdfast/connection-manager'
import { connect, onceEvent, stopAndExpectNoLeaks } from '@holdfast/test-utils'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { createMember, joined, onceRealm, subscribed, topicOf } from './fixtures.ts'
import type { RealmNode } from './fixtures.ts'
import type { AnyHoldfastEvent, CleanupBroadcaster, WatermarkConnectionManager } from '@holdfast/interface'
import type { Libp2p } from '@libp2p/interface'

type FullNode = RealmNode & Libp2p<{ broadcaster: CleanupBroadcaster, connManager: WatermarkConnectionManager }>

describe('realm with the other holdfast services', () => {
  let nodes: FullNode[] = []

  afterEach(async () => {
    await stopAndExpectNoLeaks(nodes, 'realm')
    nodes = []
  })

  const createFull = async (gater = createGater()): Promise<FullNode> => createMember({}, {
    services: {
      broadcaster: cleanupBroadcaster({ readyConditions: ['connected', 'realm-auth'] }),
      connManager: watermarkConnectionManager()
    },
    config: { connectionGater: gater }
  }) as Promise<FullNode>

  it('protects members, marks them ready and publishes member events through the broadcaster', async () => {
    const [a, b] = nodes = await Promise.all([createFull(), createFull()])
    const seen: AnyHoldfastEvent[] = []
    a.services.broadcaster.subscribe('*', event => { seen.push(event) })
    await connect(a, b)
    await a.services.broadcaster.whenReady(b.peerId, { timeout: 5_000 })
    await joined(a, b.peerId)
    expect(a.services.connManager.isProtected(b.peerId, 'realm-member')).to.be.true()
    expect(seen.filter(e => e.type === 'member:joined').map(e => (e.detail as any).peer.toString())).to.deep.equal([b.peerId.toString()])

    await subscribed(b, a.peerId, topicOf(b))
    const gone = onceEvent(a, 'peer:disconnect', p => p.equals(b.peerId))
    const left = onceRealm(a, 'member:left', d => d.peer.equals(b.peerId))
    await b.services.realm.leave()
    await b.stop()
    await gone
    nodes = [a]
    // b left before stopping: it is dropped (left) without waiting for the TTL
    expect(await left).to.have.property('reason', 'left')
    expect(a.services.connManager.isProtected(b.peerId, 'realm-member')).to.be.false()
    expect(seen.some(e => e.type === 'member:left')).to.be.true()
  })

  it('chains its gates in front of the node\'s gater (the connection manager\'s), and takes them out on every stop', async () => {
    const denied = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const gater = createGater({ deny: [denied] })
    const [a, b] = nodes = await Promise.all([createFull(gater), createFull()])
    await connect(b, a)
    await joined(a, b.peerId)
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const installed = (): any => (a as any).components.connectionGater
    expect(installed()).to.not.equal(gater)
    expect(await installed().denyInboundRelayReservation(b.peerId)).to.be.false()
    expect(await installed().denyInboundRelayReservation(stranger)).to.be.true()
    expect(await installed().denyDialPeer(denied), 'the app\'s own deny list still applies').to.be.true()
    expect(await installed().denyDialPeer(stranger)).to.be.false()
    expect(a.services.realm.stats().reservationsDenied).to.equal(1)
    for (let i = 0; i < 2; i++) {
      await a.stop()
      expect(installed(), 'no realm gate left after stop').to.equal(gater)
      await a.start()
      expect(Object.getPrototypeOf(installed()), 'one realm gate, on the app\'s gater').to.equal(gater)
    }
  })
})
