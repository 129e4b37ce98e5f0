import { expect } from 'aegir/chai'
import { stopAll } from '../src/index.ts'
import { ECHO_PROTOCOL, circuitAddrs, echo, relayServer, relayedPeer, tcpAddrOf } from '../src/infrastructure.ts'
import type { Libp2p } from '@libp2p/interface'

describe('relayServer and relayedPeer', () => {
  let nodes: Array<Libp2p<any>> = []

  afterEach(async () => {
    await stopAll(nodes)
    nodes = []
  })

  it('peers reserve on the relay, listen where asked, and echo over a relayed connection', async () => {
    const relay = await relayServer({ listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'] })
    nodes.push(relay)
    expect(tcpAddrOf(relay).toString()).to.match(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    expect(relay.getMultiaddrs().some(ma => ma.toString().includes('/ws'))).to.be.true()
    const [a, b, c] = await Promise.all([
      relayedPeer(relay, { reach: 'direct' }),
      relayedPeer(relay, { reach: 'webrtc' }),
      relayedPeer(relay, { reach: 'relay' })
    ])
    nodes.push(a, b, c)
    for (const peer of [a, b, c]) {
      expect(circuitAddrs(peer)).to.not.be.empty()
      expect(circuitAddrs(peer).every(ma => ma.toString().includes(`/p2p/${relay.peerId.toString()}/p2p-circuit`))).to.be.true()
    }
    expect(a.getMultiaddrs().some(ma => !ma.toString().includes('/p2p-circuit'))).to.be.true()
    expect(b.getMultiaddrs().some(ma => ma.toString().includes('/webrtc'))).to.be.true()
    expect(c.getMultiaddrs().every(ma => ma.toString().includes('/p2p-circuit'))).to.be.true()

    const connection = await a.dial(circuitAddrs(c))
    expect(connection.remoteAddr.toString()).to.include('/p2p-circuit')
    const stream = await connection.newStream(ECHO_PROTOCOL, { runOnLimitedConnection: true })
    expect(await echo(stream, 'through the relay')).to.equal('through the relay')
  })
})
