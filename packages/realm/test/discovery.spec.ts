import { expectNoLeaks, stopAndExpectNoLeaks } from '@holdfast/test-utils'
import { createNode } from '@holdfast/test-utils'
import { dhtServer, hasCircuitAddr, joinDht, kad, relayServer } from '@holdfast/test-utils/infrastructure'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { tcp } from '@libp2p/tcp'
import { expect } from 'aegir/chai'
import { realm } from '../src/index.ts'
import { joined, PSK } from './fixtures.ts'
import type { RealmNode } from './fixtures.ts'
import type { DhtNode } from '@holdfast/test-utils/infrastructure'
import type { Libp2p } from '@libp2p/interface'

type MemberNode = RealmNode & DhtNode

describe('realm discovery through infrastructure it does not own', () => {
  let nodes: Array<Libp2p<any>> = []

  afterEach(async () => {
    await stopAndExpectNoLeaks(nodes, 'realm')
    nodes = []
  })

  /** a member behind NAT: reachable only through a reservation on the plain relay, and a client of the plain DHT server */
  async function member (relay: Libp2p, server: DhtNode): Promise<MemberNode> {
    const node = await createNode({
      transport: 'tcp',
      services: {
        pubsub: gossipsub({ heartbeatInterval: 100 }),
        dht: kad({ clientMode: true }),
        realm: realm({ psk: PSK, infrastructure: [relay.peerId, server.peerId] })
      },
      config: { addresses: { listen: [`${relay.getMultiaddrs()[0].toString()}/p2p-circuit`] }, transports: [tcp(), circuitRelayTransport()] }
    }) as unknown as MemberNode
    nodes.push(node)
    return node
  }

  it('two members whose only common peers are a plain relay and a plain DHT server find each other, authenticate, and connect by peer ID', async () => {
    const [relay, server] = await Promise.all([relayServer(), dhtServer()])
    nodes.push(relay, server)
    const [a, b] = await Promise.all([member(relay, server), member(relay, server)])
    await Promise.all([hasCircuitAddr(a), hasCircuitAddr(b)])
    await Promise.all([joinDht(a, server), joinDht(b, server)])
    await Promise.all([joined(a, b.peerId), joined(b, a.peerId)])
    expect(a.services.realm.members().find(m => m.peerId.equals(b.peerId))?.authenticated).to.be.true()
    // neither piece of infrastructure became a member, and neither was turned away
    for (const node of [a, b]) {
      expect(node.services.realm.isMember(relay.peerId)).to.be.false()
      expect(node.services.realm.isMember(server.peerId)).to.be.false()
      expect(node.getConnections(relay.peerId)).to.not.be.empty()
      expect(node.services.realm.stats().connectionsRejected).to.deep.equal({ 'auth-failed': 0, 'auth-timeout': 0, denied: 0 })
    }
    // connect by peer ID: from a fresh start, through the relay both reserve on
    await a.hangUp(b.peerId)
    const connection = await a.services.realm.connect(b.peerId)
    expect(connection.remotePeer.equals(b.peerId)).to.be.true()
    expect(connection.remoteAddr.toString()).to.include(`${relay.peerId.toString()}/p2p-circuit`)
  })

  it('a member alone, whose DHT has no peer yet, stops at once: its provide round is aborted, not waited for', async () => {
    const relay = await relayServer()
    const server = await dhtServer()
    nodes.push(relay, server)
    const alone = await member(relay, server)
    // never joins the DHT: kad-dht holds the provide until a first peer, which never comes
    await alone.stop()
    expectNoLeaks(alone.services.realm)
  })
})
