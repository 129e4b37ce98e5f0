import { defaults as connectionManagerDefaults } from '@holdfast/connection-manager'
import { gaterLayers } from '@holdfast/interface'
import { expectNoLeaks, onceEvent, stopAll } from '@holdfast/test-utils'
import { byteStream } from '@libp2p/utils'
import { expect } from 'aegir/chai'
import { createHoldfastNode, MAX_CONNECTIONS } from '../src/index.ts'
import type { HoldfastRealmNode } from '../src/index.ts'
import type { Introspectable } from '@holdfast/interface'
import type { ConnectionGater, PeerId } from '@libp2p/interface'

const PSK = new Uint8Array(32).fill(3)
const ECHO = '/holdfast-test/echo/1.0.0'

/** resolves once `node`'s realm lists `peer` as a member */
async function member (node: HoldfastRealmNode, peer: PeerId): Promise<void> {
  if (!node.services.realm.isMember(peer)) {
    await onceEvent(node.services.realm, 'member:joined', d => d.peer.equals(peer))
  }
}

function holdfastServices (node: HoldfastRealmNode): Record<string, Introspectable> {
  const { broadcaster, connections, paths, reconnector, network, realm } = node.services
  return { broadcaster, connections, paths, reconnector, network, realm }
}

const CHAIN = Symbol.for('@holdfast/gater-chain')

interface Wrapping {
  /** how many holdfast chains wrap the app's gater */
  wrappers: number
  /** the gater under every wrapper */
  base: ConnectionGater
}

/** peels the holdfast chains off the node's gater, counting them */
function unwrap (gater: ConnectionGater): Wrapping {
  let wrappers = 0
  let current: any = gater
  while (Object.hasOwn(current, CHAIN)) {
    wrappers++
    current = current[CHAIN].base
  }
  return { wrappers, base: current }
}

describe('createHoldfastNode (Node, 127.0.0.1)', () => {
  let nodes: HoldfastRealmNode[] = []

  afterEach(async () => {
    await stopAll(nodes)
    nodes = []
  })

  it('two members that know only the relay\'s address form a realm and exchange a stream by peer ID', async () => {
    const relay = await createHoldfastNode({ realm: { psk: PSK }, relayServer: true, preset: 'test', listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(relay)
    expect(relay.services.relay).to.exist()
    const relayAddr = relay.getMultiaddrs()[0]
    const [a, b] = await Promise.all([
      createHoldfastNode({ realm: { psk: PSK }, relays: [relayAddr], preset: 'test' }),
      createHoldfastNode({ realm: { psk: PSK }, relays: [relayAddr.toString()], preset: 'test' })
    ])
    nodes.push(a, b)
    await b.handle(ECHO, async (stream) => {
      for await (const chunk of stream) {
        stream.send(chunk)
      }
      await stream.close()
    })

    // they never dialled each other: each learns of the other through the relay's gossip
    await Promise.all([member(a, b.peerId), member(b, a.peerId)])
    expect(a.services.realm.members().map(m => m.peerId.toString())).to.include(b.peerId.toString())
    expect(b.services.realm.members().map(m => m.peerId.toString())).to.include(a.peerId.toString())

    const connection = await a.services.realm.connect(b.peerId)
    expect(connection.remotePeer.equals(b.peerId)).to.be.true()
    const stream = byteStream(await connection.newStream(ECHO))
    const sent = new TextEncoder().encode('hello from a, by peer ID')
    await stream.write(sent)
    const echoed = await stream.read({ bytes: sent.length })
    expect(echoed.subarray()).to.deep.equal(sent)
    await stream.unwrap().close()

    await stopAll(nodes)
    for (const node of nodes) {
      for (const [key, service] of Object.entries(holdfastServices(node))) {
        // the realm takes its member protections back on stop, so nothing is left anywhere
        expect(() => { expectNoLeaks(service) }, key).to.not.throw()
      }
    }
  })

  it('without a realm: every other service is there, typed on node.services, and libp2p\'s limits are ours', async () => {
    const node = await createHoldfastNode({ preset: 'test' })
    nodes.push(node as unknown as HoldfastRealmNode)
    expect(Object.keys(node.services)).to.include.members(['broadcaster', 'connections', 'paths', 'reconnector', 'network', 'pubsub', 'dht', 'autonat', 'dcutr', 'identify', 'ping'])
    expect(node.services).to.not.have.property('realm')
    expect(node.services).to.not.have.property('relay')
    // libp2p's pruner is only an emergency cap, above the holdfast manager's highWater
    expect((node as any).components.connectionManager.getMaxConnections()).to.equal(MAX_CONNECTIONS)
    expect(MAX_CONNECTIONS).to.be.above(connectionManagerDefaults.highWater)
    expect(node.getMultiaddrs().map(String).every(a => a.startsWith('/ip4/127.0.0.1/'))).to.be.true()
  })

  it('bad options are an InvalidConfigError naming the option, before any node starts', async () => {
    await expect(createHoldfastNode({ preset: 'phone' as any })).to.eventually.be.rejected
      .with.property('option', 'preset')
    await expect(createHoldfastNode({ relays: ['not a multiaddr'] })).to.eventually.be.rejected
      .with.property('name', 'InvalidConfigError')
    await expect(createHoldfastNode({ relays: ['/ip4/127.0.0.1/tcp/4001'] })).to.eventually.be.rejected
      .with.property('option', 'relays')
    await expect(createHoldfastNode({ realm: { psk: new Uint8Array(8) } })).to.eventually.be.rejected
      .with.property('name', 'InvalidConfigError')
  })

  it('a stop/start/stop/start cycle leaves exactly one gater wrapper, with the connection manager\'s and the realm\'s layers once each', async () => {
    const node = await createHoldfastNode({ realm: { psk: new Uint8Array(32).fill(5) }, preset: 'test', listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(node)
    // the node's components: libp2p keeps them on the node, where the services' gater layers live
    const components = (node as unknown as { components: { connectionGater: ConnectionGater } }).components
    const started = unwrap(components.connectionGater)
    expect(started.wrappers).to.equal(1)
    const appGater = started.base
    const layers = ['@holdfast/connection-manager', '@holdfast/realm']
    expect(gaterLayers(components)).to.have.members(layers)

    for (let cycle = 0; cycle < 2; cycle++) {
      await node.stop()
      expect(unwrap(components.connectionGater)).to.deep.equal({ wrappers: 0, base: appGater }, `stopped, cycle ${cycle}`)
      expect(gaterLayers(components)).to.deep.equal([])
      await node.start()
      const again = unwrap(components.connectionGater)
      expect(again.wrappers).to.equal(1, `started, cycle ${cycle}`)
      expect(again.base).to.equal(appGater)
      expect(gaterLayers(components)).to.have.members(layers).and.to.have.lengthOf(2)
    }
  })
})
