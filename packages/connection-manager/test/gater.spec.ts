import { connect, createNodes, stopAll } from '@holdfast/test-utils'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { createGater } from '../src/index.ts'
import { createHub } from './helpers.ts'
import type { Hub } from './helpers.ts'
import type { HoldfastGater } from '../src/index.ts'
import type { Libp2p } from '@libp2p/interface'

describe('createGater', () => {
  let hub: Hub | undefined
  let nodes: Libp2p[] = []

  afterEach(async () => {
    await stopAll([hub, ...nodes])
    hub = undefined
    nodes = []
  })

  it('on a real node beside the manager: denied peers can neither dial in nor be dialed; allowPeer lifts it at run time', async () => {
    nodes = await createNodes(3)
    const [friend, stranger, other] = nodes
    const gater = createGater({ deny: [stranger.peerId] })
    hub = await createHub({ maxOutbound: 10 }, { connectionGater: gater })

    await connect(friend, hub)
    await expect(stranger.dial(hub.getMultiaddrs())).to.eventually.be.rejected()
    expect(hub.getConnections(stranger.peerId)).to.have.lengthOf(0)
    await expect(hub.dial(stranger.getMultiaddrs())).to.eventually.be.rejected().with.property('name', 'DialDeniedError')

    gater.allowPeer(stranger.peerId)
    await connect(stranger, hub)
    gater.denyPeer(other.peerId)
    await expect(hub.dial(other.getMultiaddrs())).to.eventually.be.rejected().with.property('name', 'DialDeniedError')
    gater.forgetPeer(other.peerId)
    await connect(hub, other)
    expect(hub.services.connections.stats().connections).to.equal(3)
  })

  it('denyMultiaddrs matches whole components, and an allowed peer passes anyway', async () => {
    nodes = await createNodes(2)
    const [a, b] = nodes
    const addrA = a.getMultiaddrs()[0]
    const memoryA = addrA.toString().split('/p2p/')[0]
    const gater = createGater({ denyMultiaddrs: [memoryA], allow: [b.peerId] })
    expect(await gater.denyDialMultiaddr?.(addrA)).to.equal(true)
    // a longer name sharing the text prefix is a different component
    expect(await gater.denyDialMultiaddr?.(multiaddr(`${memoryA}x`))).to.equal(false)
    expect(await gater.denyDialMultiaddr?.(multiaddr(`${memoryA}/p2p/${b.peerId.toString()}`))).to.equal(false)

    hub = await createHub({}, { connectionGater: gater })
    await expect(hub.dial(addrA)).to.eventually.be.rejected().with.property('name', 'DialDeniedError')
  })

  describe('realm hook (gater methods called directly: no circuit-relay server among this repo\'s dependencies)', () => {
    let gater: HoldfastGater
    let member: Libp2p
    let outsider: Libp2p
    let allowed: Libp2p

    beforeEach(async () => {
      nodes = await createNodes(3)
      ;[member, outsider, allowed] = nodes
      gater = createGater({ allow: [allowed.peerId] })
    })

    it('without a hook every peer may reserve; with one, only members (and allowed peers)', async () => {
      expect(await gater.denyInboundRelayReservation?.(outsider.peerId)).to.equal(false)
      gater.setRealmHook(async (peer) => peer.equals(member.peerId))
      expect(await gater.denyInboundRelayReservation?.(member.peerId)).to.equal(false)
      expect(await gater.denyInboundRelayReservation?.(outsider.peerId)).to.equal(true)
      expect(await gater.denyInboundRelayReservation?.(allowed.peerId)).to.equal(false)
      gater.denyPeer(member.peerId)
      expect(await gater.denyInboundRelayReservation?.(member.peerId)).to.equal(true)
      expect(await gater.denyOutboundRelayedConnection?.(outsider.peerId, member.peerId)).to.equal(true)
      gater.setRealmHook(undefined)
      expect(await gater.denyInboundRelayReservation?.(outsider.peerId)).to.equal(false)
    })

    it('bad input throws InvalidArgumentError', () => {
      expect(() => createGater({ deny: ['x' as any] })).to.throw().with.property('name', 'InvalidArgumentError')
      expect(() => createGater({ denyMultiaddrs: ['not an address'] })).to.throw().with.property('name', 'InvalidArgumentError')
      expect(() => { gater.setRealmHook(42 as any) }).to.throw().with.property('name', 'InvalidArgumentError')
      expect(() => { gater.denyPeer(undefined as any) }).to.throw().with.property('name', 'InvalidArgumentError')
    })
  })
})
