import { gaterLayers } from '@holdfast/interface'
import { connect } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { HubFixture, nextEvent } from './helpers.ts'
import type { ConnectionGater } from '@libp2p/interface'

/** how the node's gater chain keeps its state (see `addGaterLayer` in `@holdfast/interface`) */
const CHAIN = Symbol.for('@holdfast/gater-chain')

describe('per-direction limits (real nodes, memory transport)', () => {
  const f = new HubFixture()

  it('maxInbound: the excess inbound connection is refused before any stream can be opened on it; a protected peer still gets in', async () => {
    const { connections } = await f.hubWith({ maxInbound: 2 })
    const streamsFrom = new Map<string, number>()
    await f.hub.handle('/probe/1', (stream, connection) => {
      const key = connection.remotePeer.toString()
      streamsFrom.set(key, (streamsFrom.get(key) ?? 0) + 1)
      stream.close().catch(() => {})
    })
    const [a, b] = await f.dialIn(2)
    const [c, d] = await f.nodes(2)
    const opened: string[] = []
    const onOpen = (evt: CustomEvent<{ remotePeer: { toString(): string } }>): void => { opened.push(evt.detail.remotePeer.toString()) }
    f.hub.addEventListener('connection:open', onOpen)

    const exceeded = nextEvent(f.hub, 'limit:exceeded')
    const dial = c.dial(f.hub.getMultiaddrs()).then(async conn => conn.newStream('/probe/1'))
    await expect(dial).to.eventually.be.rejected()
    expect(await exceeded).to.deep.equal({ direction: 'inbound', peer: c.peerId })
    expect(opened).to.not.include(c.peerId.toString())
    expect(streamsFrom.get(c.peerId.toString())).to.equal(undefined)
    expect(f.hub.getConnections(c.peerId)).to.have.lengthOf(0)

    connections.protect(d.peerId, 'realm-member')
    await connect(d, f.hub)
    const stream = await d.dialProtocol(f.hub.getMultiaddrs(), '/probe/1')
    await stream.close()
    expect(connections.stats()).to.deep.include({ inbound: 3, refused: { inbound: 1, outbound: 0 } })
    expect(f.hub.getConnections(a.peerId)).to.have.lengthOf(1)
    expect(f.hub.getConnections(b.peerId)).to.have.lengthOf(1)
    f.hub.removeEventListener('connection:open', onOpen)
    connections.unprotect(d.peerId, 'realm-member')
  })

  it('maxOutbound: a dial over the limit rejects with ConnectionLimitError, except to a protected peer', async () => {
    const { connections } = await f.hubWith({ maxOutbound: 1 })
    const [a, b, c] = await f.nodes(3)
    await connect(f.hub, a)
    const exceeded = nextEvent(f.hub, 'limit:exceeded')
    await expect(f.hub.dial(b.getMultiaddrs())).to.eventually.be.rejected().with.property('name', 'ConnectionLimitError')
    expect(await exceeded).to.deep.equal({ direction: 'outbound', peer: b.peerId })
    expect(f.hub.getConnections(b.peerId)).to.have.lengthOf(0)

    connections.protect(c.peerId, 'relay-active')
    await connect(f.hub, c)
    expect(connections.stats()).to.deep.include({ outbound: 2, refused: { inbound: 0, outbound: 1 } })
    connections.unprotect(c.peerId, 'relay-active')
  })

  it('the node gater is chained, not replaced: its own denials still apply, and it is restored on stop', async () => {
    const [blocked] = await f.nodes(1)
    const gater = { denyDialPeer: (peer: { equals(o: unknown): boolean }) => peer.equals(blocked.peerId) }
    await f.hubWith({ maxOutbound: 5 }, { connectionGater: gater as any })
    const { hub } = f
    await expect(hub.dial(blocked.getMultiaddrs())).to.eventually.be.rejected().with.property('name', 'DialDeniedError')
    const components = (hub as any).components
    expect(components.connectionGater).to.not.equal(gater)
    await hub.stop()
    expect(components.connectionGater).to.equal(gater)
  })

  it('stop/start/stop/start leaves exactly one gater wrapper: while started the node\'s gater is one chain over the app\'s own gater, listing the manager\'s layer once; after each stop the app\'s gater is back and no layer is left', async () => {
    const [blocked] = await f.nodes(1)
    const appGater: ConnectionGater = { denyDialPeer: (peer) => peer.equals(blocked.peerId) }
    await f.hubWith({ maxOutbound: 5 }, { connectionGater: appGater })
    const { hub } = f
    const components = (hub as unknown as { components: { connectionGater: ConnectionGater } }).components
    const chainOf = (gater: ConnectionGater): { base: ConnectionGater } | undefined => (gater as { [CHAIN]?: { base: ConnectionGater } })[CHAIN]

    for (let round = 0; round < 2; round++) {
      if (round > 0) {
        await hub.start()
      }
      const gater = components.connectionGater
      expect(gater).to.not.equal(appGater)
      expect(chainOf(gater)?.base, 'the chain wraps the app\'s gater').to.equal(appGater)
      expect(Object.getPrototypeOf(gater), 'inherits from the app\'s gater itself').to.equal(appGater)
      expect(chainOf(appGater), 'the base is not another chain').to.equal(undefined)
      expect(gaterLayers(components)).to.deep.equal(['@holdfast/connection-manager'])
      expect(hub.services.connections.internalSizes().gater).to.equal(1)
      // the app's own denials still apply through the chain
      await expect(hub.dial(blocked.getMultiaddrs())).to.eventually.be.rejected().with.property('name', 'DialDeniedError')

      await hub.stop()
      expect(components.connectionGater).to.equal(appGater)
      expect(gaterLayers(components)).to.deep.equal([])
      expect(hub.services.connections.internalSizes().gater).to.equal(0)
    }
  })
})
