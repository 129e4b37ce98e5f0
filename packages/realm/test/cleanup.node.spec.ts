import { once } from 'node:events'
import { createServer } from 'node:net'
import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { pathSelector } from '@holdfast/path-selector'
import { connect, disconnect, expectNoLeaks, stopAll } from '@holdfast/test-utils'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { createMember, joined, onceRealm, OTHER_PSK } from './fixtures.ts'
import type { RealmNode } from './fixtures.ts'
import type { CleanupBroadcaster, CleanupReason, CleanupReport, PathSelector } from '@holdfast/interface'
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import type { AddressInfo, Server, Socket } from 'node:net'

type BroadcastNode = RealmNode & Libp2p<{ broadcaster: CleanupBroadcaster }>

/** a TCP server on 127.0.0.1 that accepts and never answers: a dial to it hangs in its handshake */
async function hangingServer (): Promise<{ server: Server, sockets: Socket[], addr: string }> {
  const sockets: Socket[] = []
  const server = createServer(socket => { sockets.push(socket) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, sockets, addr: `/ip4/127.0.0.1/tcp/${(server.address() as AddressInfo).port}` }
}

async function cleaned (node: BroadcastNode, peer: PeerId, reason: CleanupReason): Promise<CleanupReport> {
  return new Promise(resolve => {
    const unsubscribe = node.services.broadcaster.subscribe('peer:cleaned', ({ detail }) => {
      if (detail.peer.equals(peer) && detail.reason === reason) {
        unsubscribe()
        resolve(detail.report)
      }
    })
  })
}

describe('realm with the cleanup broadcaster: a cleanup ends what the realm does for the peer', () => {
  let nodes: RealmNode[] = []
  let hang: Awaited<ReturnType<typeof hangingServer>> | undefined

  afterEach(async () => {
    await stopAll(nodes)
    for (const node of nodes) {
      for (const service of ['realm', 'broadcaster', 'paths']) {
        if (service in node.services) {
          expectNoLeaks((node.services as any)[service])
        }
      }
    }
    nodes = []
    hang?.sockets.forEach(socket => socket.destroy())
    hang?.server.close()
    hang = undefined
  })

  /** `a` (with the broadcaster, and what else `services` adds) met member `b`, then lost it: b's only known address now hangs */
  async function memberBehindHangingAddress (services: Record<string, any> = {}): Promise<[BroadcastNode, RealmNode, Server]> {
    const [a, b] = nodes = await Promise.all([
      createMember({}, { transport: 'tcp', services: { broadcaster: cleanupBroadcaster(), ...services } }),
      createMember({}, { transport: 'tcp' })
    ]) as [BroadcastNode, RealmNode]
    await connect(a, b)
    await joined(a, b.peerId)
    const gone = cleaned(a, b.peerId, 'peer-disconnected')
    await disconnect(a, b)
    await gone
    hang = await hangingServer()
    await a.peerStore.patch(b.peerId, { multiaddrs: [multiaddr(hang.addr)] })
    return [a, b, hang.server]
  }

  for (const via of ['a direct dial', 'the path selector'] as const) {
    it(`a cleanup of the peer rejects realm.connect at once and aborts its hanging dial (through ${via})`, async () => {
      const [a, b, server] = await memberBehindHangingAddress(via === 'the path selector' ? { paths: pathSelector({ preset: 'test', upgrade: false }) } : {})
      // the signal the realm hands the path selector's connect, when it has one
      const selector = (a.services as { paths?: PathSelector }).paths
      const signals: AbortSignal[] = []
      if (selector != null) {
        const original = selector.connect.bind(selector)
        selector.connect = async (peer, opts) => {
          signals.push(opts?.signal as AbortSignal)
          return original(peer, opts)
        }
      }
      const accepted = once(server, 'connection')
      let settled = false
      const connecting = a.services.realm.connect(b.peerId).finally(() => { settled = true })
      connecting.catch(() => {})
      await accepted
      expect(a.services.broadcaster.pending(b.peerId), 'the connect is work bound to the peer').to.be.greaterThan(0)

      const report = await a.services.broadcaster.cleanup(b.peerId, 'manual')
      expect(settled, 'rejected within the cleanup, not at the dial timeout').to.be.true()
      const err = await connecting.then(() => undefined, (err: any) => err)
      expect(err).to.have.property('name', 'ConnectionClosedError')
      expect(err).to.have.property('reason', 'manual')
      expect(report.pendingRejected, 'the realm\'s connect').to.equal(1)
      if (via === 'a direct dial') {
        expect(report.dialsAborted, 'the dial went through the broadcaster').to.equal(1)
      } else {
        // the path selector was handed the peer's signal, which the cleanup aborted
        expect(signals).to.have.lengthOf(1)
        expect(signals[0].aborted).to.be.true()
        expect(signals[0].reason).to.have.property('name', 'ConnectionClosedError')
      }
      expect(report.layers.find(l => l.layer === 'realm')).to.include({ ok: true })
      expect(a.services.broadcaster.pending()).to.equal(0)
      expect(a.services.realm.internalSizes()).to.include({ pendingAuth: 0, peers: 1 })
      expect(a.services.realm.isMember(b.peerId), 'a cleanup is no reason to drop a member').to.be.true()
    })
  }

  it('drops what it holds for the peer\'s closed connections even when their close never reached the realm', async () => {
    const [a, b] = nodes = await Promise.all([createMember({}, { services: { broadcaster: cleanupBroadcaster() } }), createMember()]) as [BroadcastNode, RealmNode]
    await connect(a, b)
    await joined(a, b.peerId)
    expect(a.services.realm.members()[0].authenticated).to.be.true()
    // libp2p may report the disconnect, and the broadcaster clean the peer up, before the realm sees the close
    const events = (a as any).components.events
    const onClose = (a.services.realm as any).onConnectionClose
    events.removeEventListener('connection:close', onClose)
    const gone = cleaned(a, b.peerId, 'peer-disconnected')
    await disconnect(a, b)
    const report = await gone
    events.addEventListener('connection:close', onClose)
    expect(report.layers.find(l => l.layer === 'realm')).to.include({ ok: true })
    expect(a.services.realm.members()[0].authenticated, 'its closed connection is no longer counted').to.be.false()
    expect(a.services.realm.isMember(b.peerId)).to.be.true()
  })

  it('keeps the security state: a denied outsider stays denied and a member\'s seq stays remembered after their cleanups', async () => {
    const [a, b, outsider] = nodes = await Promise.all([
      // a short authTimeout: the outsider, of another realm, never speaks ours and is refused when it runs out
      createMember({ authTimeout: 300 }, { services: { broadcaster: cleanupBroadcaster() } }),
      createMember(),
      createMember({ psk: OTHER_PSK })
    ]) as [BroadcastNode, RealmNode, RealmNode]
    await connect(a, b)
    await joined(a, b.peerId)
    const rejected = onceRealm(a, 'realm:rejected', d => d.peer.equals(outsider.peerId))
    await outsider.dial(a.getMultiaddrs()).catch(() => {})
    await rejected
    const before = a.services.realm.internalSizes()
    expect(before).to.include({ denied: 1, seqs: 1, cleanupLayer: 1 })

    for (const peer of [b.peerId, outsider.peerId]) {
      const report = await a.services.broadcaster.cleanup(peer, 'manual')
      expect(report.layers.find(l => l.layer === 'realm')).to.include({ ok: true })
    }
    expect(a.services.realm.internalSizes()).to.include({ denied: 1, seqs: 1, peers: 1 })
    await expect(a.services.realm.connect(outsider.peerId)).to.eventually.be.rejected.with.property('name', 'NotRealmMemberError')
    expect(a.services.realm.isMember(b.peerId)).to.be.true()
    // and the member comes back on a fresh connection
    const again: Connection = await a.services.realm.connect(b.peerId)
    expect(again.remotePeer.equals(b.peerId)).to.be.true()
  })
})
