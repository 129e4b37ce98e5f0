import { pathSelector } from '@holdfast/path-selector'
import { connect, createNode, disconnect, onceEvent, stopAndExpectNoLeaks } from '@holdfast/test-utils'
import { hasCircuitAddr } from '@holdfast/test-utils/infrastructure'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { FaultTolerance } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { expect } from 'aegir/chai'
import { connectNode } from '../src/index.ts'
import { createMember, joined, learnThroughHub, OTHER_PSK } from './fixtures.ts'
import { realmKad } from './kad-wire.ts'
import type { RealmNode } from './fixtures.ts'
import type { PathSelector } from '@holdfast/path-selector'
import type { Libp2p } from '@libp2p/interface'

/** a member holding a reservation on `relay` (TCP on 127.0.0.1: the relay transport does not listen through memory addresses) */
async function createRelayed (relay: Libp2p<any>, psk?: Uint8Array): Promise<RealmNode> {
  // an outsider of another realm: not exclusive, so it keeps its own connection to the relay and asks
  const node = await createMember(psk == null ? {} : { psk, exclusive: false }, {
    config: {
      // a refused reservation must not fail the node's start
      transportManager: { faultTolerance: FaultTolerance.NO_FATAL },
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0', `${relay.getMultiaddrs()[0].toString()}/p2p-circuit`] },
      transports: [tcp(), circuitRelayTransport()]
    }
  })
  return node
}

async function inRoutingTable (node: Libp2p<any>, peer: Libp2p<any>): Promise<void> {
  const table = node.services.dht.routingTable
  if ((await table.find(peer.peerId)) != null) {
    return
  }
  await new Promise<void>(resolve => {
    const listener = ({ detail }: CustomEvent): void => {
      if (detail.equals(peer.peerId)) {
        table.removeEventListener('peer:add', listener)
        resolve()
      }
    }
    table.addEventListener('peer:add', listener)
  })
}

describe('realm.connect by peer ID', () => {
  let nodes: Array<Libp2p<any>> = []

  afterEach(async () => {
    await stopAndExpectNoLeaks(nodes, 'realm')
    nodes = []
  })

  it('source 1, the peer store: a member met before is re-dialled from its stored addresses', async () => {
    const [a, b] = nodes = await Promise.all([createMember(), createMember()]) as RealmNode[]
    await connect(a, b)
    await joined(a, b.peerId)
    await disconnect(a, b)
    const connection = await a.services.realm.connect(b.peerId)
    expect(connection.remotePeer.equals(b.peerId)).to.be.true()
    expect((a.services.realm as any).lastSource).to.equal('peer-store')
    expect(a.services.realm.members().find(m => m.peerId.equals(b.peerId))?.authenticated).to.be.true()
    // resolved only once authenticated: a stream opens on it
    const stream = await connection.newStream('/ipfs/ping/1.0.0')
    await stream.close()
  })

  it('connects through the path selector when the node has one', async () => {
    const [a, b] = nodes = await Promise.all([
      createMember({}, { services: { paths: pathSelector({ preset: 'test', upgrade: false }) } }),
      createMember()
    ]) as RealmNode[]
    await connect(a, b)
    await joined(a, b.peerId)
    await disconnect(a, b)
    // the realm finds the selector by capability at start and calls it at connect time
    const selector = (a.services as unknown as { paths: PathSelector }).paths
    const viaSelector: string[] = []
    const original = selector.connect.bind(selector)
    selector.connect = async (peer, opts) => {
      viaSelector.push(peer.toString())
      return original(peer, opts)
    }
    const connection = await a.services.realm.connect(b.peerId)
    expect(viaSelector).to.deep.equal([b.peerId.toString()])
    expect(connection.remotePeer.equals(b.peerId)).to.be.true()
    expect(selector.mode(b.peerId)).to.be.a('string')
    expect(a.services.realm.members().find(m => m.peerId.equals(b.peerId))?.authenticated).to.be.true()
  })

  it('source 2, the member list: a member only heard of through announcements is dialled from them', async () => {
    const [a, hub, c] = nodes = await Promise.all([createMember(), createMember(), createMember()]) as RealmNode[]
    await learnThroughHub(a, hub, c)
    expect(a.getConnections(c.peerId)).to.be.empty()
    const connection = await a.services.realm.connect(c.peerId)
    expect(connection.remotePeer.equals(c.peerId)).to.be.true()
    expect((a.services.realm as any).lastSource).to.equal('member-list')
  })

  it('source 3, the DHT: a member with no stored or announced address is found through its realm record on a DHT node outside the realm', async () => {
    // the DHT node runs no realm: it validates and stores records it cannot read
    const dhtNode = await createNode({ services: { dht: realmKad() } })
    // named infrastructure: the members keep their connections to it although it never authenticates
    const infra = { infrastructure: [dhtNode.peerId] }
    const [a, c] = await Promise.all([createMember(infra, { services: { dht: realmKad() } }), createMember(infra, { services: { dht: realmKad() } })])
    nodes.push(dhtNode, a, c)
    await connect(a, dhtNode)
    await connect(c, dhtNode)
    await Promise.all([inRoutingTable(c, dhtNode), inRoutingTable(a, dhtNode), inRoutingTable(dhtNode, c)])
    await c.services.realm.publishRecord()
    // kad's own queries may have dialled a and c to each other: forget that, so only the DHT record is left
    if (a.getConnections(c.peerId).length > 0) {
      await disconnect(a, c)
    }
    await a.peerStore.delete(c.peerId)
    expect(a.services.realm.members().find(m => m.peerId.equals(c.peerId))?.addrs ?? []).to.be.empty()
    const connection = await a.services.realm.connect(c.peerId)
    expect((a.services.realm as any).lastSource).to.equal('dht')
    expect(connection.remotePeer.equals(c.peerId)).to.be.true()
    expect(a.services.realm.isMember(c.peerId)).to.be.true()
  })

  it('source 4, a relay\'s address book: a member met before, with no stored address, is found through the relay it reserves on', async () => {
    const relay = await createMember({}, { transport: 'tcp', services: { relay: circuitRelayServer() } })
    nodes.push(relay)
    const b = await createRelayed(relay)
    // a can dial circuits but holds no reservation (so no shared relay either)
    const a = await createMember({}, { transport: 'tcp', config: { transports: [tcp(), circuitRelayTransport()] } })
    nodes.push(a, b)
    await hasCircuitAddr(b)
    await connect(a, b)
    await joined(a, b.peerId)
    await disconnect(a, b)
    await a.peerStore.delete(b.peerId)
    const identified = onceEvent(a, 'peer:identify', d => d.peerId.equals(relay.peerId))
    await connect(a, relay)
    await Promise.all([identified, joined(a, relay.peerId), joined(relay, a.peerId)])
    const connection = await a.services.realm.connect(b.peerId)
    expect((a.services.realm as any).lastSource).to.equal('address-book')
    expect(connection.remoteAddr.toString()).to.include(`${relay.peerId.toString()}/p2p-circuit`)
  })

  it('source 5, a shared relay: with nothing else known, the member is reached through a relay both hold reservations on', async () => {
    // a relay without an address book: the shared reservation is all that is left
    const relay = await createMember({ serveAddressBook: false }, { transport: 'tcp', services: { relay: circuitRelayServer() } })
    nodes.push(relay)
    const [a, b] = await Promise.all([createRelayed(relay), createRelayed(relay)])
    nodes.push(a, b)
    await Promise.all([hasCircuitAddr(a), hasCircuitAddr(b)])
    // a knows b is a member (they met) but kept no address of it
    await connect(a, b)
    await joined(a, b.peerId)
    await disconnect(a, b)
    await a.peerStore.delete(b.peerId)
    const connection = await a.services.realm.connect(b.peerId)
    expect((a.services.realm as any).lastSource).to.equal('shared-relay')
    expect(connection.remoteAddr.toString()).to.include('/p2p-circuit')
    expect(a.services.realm.members().find(m => m.peerId.equals(b.peerId))?.authenticated).to.be.true()
  })

  it('a realm relay gives no reservation to an outsider', async () => {
    // the relay waits authTimeout for the outsider's proof before refusing
    // not exclusive, so the outsider stays connected long enough to ask: the gate alone refuses it
    const relay = await createMember({ authTimeout: 300, exclusive: false }, { transport: 'tcp', services: { relay: circuitRelayServer() } })
    nodes.push(relay)
    const denied = new Promise(resolve => { relay.services.realm.addEventListener('reservation:denied', ({ detail }: any) => { resolve(detail.peer) }) })
    const outsider = await createRelayed(relay, OTHER_PSK)
    nodes.push(outsider)
    expect((await denied as any).equals(outsider.peerId)).to.be.true()
    expect(outsider.getMultiaddrs().map(String).some(a => a.includes('/p2p-circuit'))).to.be.false()
    expect(relay.services.realm.stats().reservationsDenied).to.equal(1)
    // a member does get one
    const member = await createRelayed(relay)
    nodes.push(member)
    await hasCircuitAddr(member)
  })

  it('a peer reached that fails auth is a NotRealmMemberError; one reached by no address is a PeerUnreachableError', async () => {
    const [a, outsider] = nodes = await Promise.all([createMember(), createMember({ psk: OTHER_PSK })]) as RealmNode[]
    await expect(a.services.realm.connect(outsider.peerId)).to.eventually.be.rejected.with.property('name', 'PeerUnreachableError')
    expect(a.services.realm.stats().authFailed, 'nothing was reached, so nothing was learned').to.equal(0)
    await a.peerStore.merge(outsider.peerId, { multiaddrs: outsider.getMultiaddrs() })
    await expect(a.services.realm.connect(outsider.peerId)).to.eventually.be.rejected.with.property('name', 'NotRealmMemberError')
    // the verdict is kept on its connection: asked again, it comes without a second exchange
    await expect(a.services.realm.connect(outsider.peerId)).to.eventually.be.rejected.with.property('name', 'NotRealmMemberError')
    expect(a.services.realm.stats().authFailures.unsupported, 'its realm speaks another auth protocol').to.equal(1)
  })

  it('connectNode: a bare unknown peer ID is an AddressRequiredError, a multiaddr dials', async () => {
    const [a, b] = nodes = await Promise.all([createMember(), createMember({ psk: OTHER_PSK })]) as RealmNode[]
    await expect(connectNode(a, b.peerId)).to.eventually.be.rejected.with.property('name', 'AddressRequiredError')
    const connection = await connectNode(a, b.getMultiaddrs())
    expect(connection.remotePeer.equals(b.peerId)).to.be.true()
    expect((await connectNode(a, b.peerId)).id).to.equal(connection.id)
  })
})
