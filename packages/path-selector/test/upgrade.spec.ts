import { watermarkConnectionManager } from '@holdfast/connection-manager'
import { TAGS } from '@holdfast/interface'
import { expectNoLeaks, stopAll } from '@holdfast/test-utils'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { expect } from 'aegir/chai'
import { ECHO, circuitAddrs, createPeer, createRelay, echo, forPeer, onceServiceEvent, tcpAddrOf } from './fixtures.ts'
import type { PeerNode, RelayNode } from './fixtures.ts'
import type { PathSelectorInit } from '../src/index.ts'
import type { WatermarkConnectionManager } from '@holdfast/interface'
import type { Connection, PeerId, Stream } from '@libp2p/interface'

/** fast retries: the tests wait for the events, these only keep them short */
const INIT: PathSelectorInit = { preset: 'test', retryInitialDelayMs: 100, retryMaxDelayMs: 1_000 }

const connectionOf = (node: PeerNode, peer: PeerId, stream: Stream): Connection | undefined => node.getConnections(peer).find(c => c.streams.some(s => s.id === stream.id))

describe('relay-first connect, WebRTC upgrade, fallback and the reservation watchdog (real nodes on 127.0.0.1: TCP/WebSockets relay, WebRTC peers)', function () {
  this.timeout(60_000)
  let nodes: Array<RelayNode | PeerNode | undefined> = []

  afterEach(async () => {
    await stopAll(nodes)
    for (const node of nodes) {
      const paths = (node as PeerNode | undefined)?.services.paths
      if (paths != null) {
        expectNoLeaks(paths)
      }
    }
    nodes = []
  })

  async function setup (): Promise<{ relay: RelayNode, a: PeerNode, b: PeerNode }> {
    const relay = await createRelay()
    nodes.push(relay)
    // A with the holdfast connection manager, which protects the relay backup
    const a = await createPeer(relay, { reach: 'webrtc', init: INIT, services: { watermark: watermarkConnectionManager() } })
    nodes.push(a)
    const b = await createPeer(relay, { reach: 'webrtc', init: INIT })
    nodes.push(b)
    return { relay, a, b }
  }

  it('connects through the relay, then upgrades to WebRTC: direct-primary, the relayed connection still open and tagged, streams over WebRTC', async () => {
    const { a, b } = await setup()
    // the peers know each other only through the relay
    expect(a.getMultiaddrs().every(ma => ma.toString().includes('/p2p-circuit'))).to.equal(true)
    const upgraded = onceServiceEvent(a.services.paths, 'path:upgraded', forPeer(b.peerId))

    const relayed = await a.services.paths.connect(b.peerId, { addrs: circuitAddrs(b) })
    expect(relayed.direct).to.equal(false)
    expect((await upgraded).durationMs).to.be.a('number')

    expect(a.services.paths.mode(b.peerId)).to.equal('direct-primary')
    const best = a.services.paths.best(b.peerId)
    expect(best).to.deep.include({ kind: 'direct', transport: 'webrtc', holePunched: true })
    expect(relayed.status).to.equal('open')
    expect(a.services.paths.paths(b.peerId).map(p => p.kind).sort()).to.deep.equal(['direct', 'relayed'])
    expect((await a.peerStore.get(b.peerId)).tags.get(TAGS.relayBackup)?.value).to.be.greaterThan(0)
    expect((a.services as unknown as { watermark: WatermarkConnectionManager }).watermark.isProtected(b.peerId, TAGS.relayBackup)).to.equal(true)
    // the other end sees the same two paths and keeps the relay as backup too
    expect(b.services.paths.mode(a.peerId)).to.equal('direct-primary')

    const stream = await a.services.paths.openStream(b.peerId, ECHO)
    const carrier = connectionOf(a, b.peerId, stream)
    expect(carrier?.id).to.equal(best?.connectionId)
    expect(carrier?.direct).to.equal(true)
    expect(await echo(stream)).to.equal('hello holdfast')
  })

  it('when the WebRTC connection closes: fallback, an echo right after goes over the relay, the upgrade is retried and direct-primary returns', async () => {
    const { a, b } = await setup()
    const upgraded = onceServiceEvent(a.services.paths, 'path:upgraded', forPeer(b.peerId))
    const relayed = await a.services.paths.connect(b.peerId, { addrs: circuitAddrs(b) })
    await upgraded
    const webrtc = a.getConnections(b.peerId).find(c => c.direct)
    expect(webrtc).to.not.equal(undefined)

    const fellBack = onceServiceEvent(a.services.paths, 'path:fallback', forPeer(b.peerId))
    const upgradedAgain = onceServiceEvent(a.services.paths, 'path:upgraded', forPeer(b.peerId))
    await webrtc?.close()
    await fellBack
    expect(a.services.paths.mode(b.peerId)).to.equal('fallback')

    const stream = await a.services.paths.openStream(b.peerId, ECHO)
    expect(connectionOf(a, b.peerId, stream)?.id).to.equal(relayed.id)
    expect(await echo(stream, 'still here')).to.equal('still here')

    await upgradedAgain
    expect(a.services.paths.mode(b.peerId)).to.equal('direct-primary')
    const best = a.services.paths.best(b.peerId)
    expect(best?.transport).to.equal('webrtc')
    expect(best?.connectionId).to.not.equal(webrtc?.id)
    expect(relayed.status).to.equal('open')
  })

  it('kill the relay: reservation-lost; a relay back on the same address (same key and port): reservation-restored and the peer is reachable through it again', async () => {
    const privateKey = await generateKeyPair('Ed25519')
    const relay = await createRelay({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(relay)
    const port = tcpAddrOf(relay).getComponents().find(c => c.name === 'tcp')?.value
    const a = await createPeer(relay, { reach: 'webrtc', init: INIT })
    nodes.push(a)
    expect(circuitAddrs(a)).to.have.length.greaterThan(0)

    const lost = onceServiceEvent(a.services.paths, 'relay:reservation-lost')
    await relay.stop()
    expect((await lost).relay.equals(relay.peerId)).to.equal(true)
    expect(circuitAddrs(a)).to.deep.equal([])

    const restored = onceServiceEvent(a.services.paths, 'relay:reservation-restored')
    const again = await createRelay({ privateKey, listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    nodes.push(again)
    const detail = await restored
    expect(detail.relay.equals(relay.peerId)).to.equal(true)
    expect(detail.attempts).to.be.at.least(1)
    expect(detail.downtimeMs).to.be.greaterThan(0)
    expect(circuitAddrs(a)).to.have.length.greaterThan(0)

    const b = await createPeer(again, { reach: 'webrtc', init: { ...INIT, upgrade: false } })
    nodes.push(b)
    const connection = await b.services.paths.connect(a.peerId, { addrs: circuitAddrs(a) })
    expect(connection.direct).to.equal(false)
    expect(await echo(await b.services.paths.openStream(a.peerId, ECHO), 'via the new relay')).to.equal('via the new relay')
  })
})
