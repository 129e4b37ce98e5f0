import net from 'node:net'
import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { registerService, TAGS } from '@holdfast/interface'
import { reconnector } from '@holdfast/reconnector'
import { connect, createFakeClock, createNode, disconnect, expectNoLeaks, onceEvent, stopAll } from '@holdfast/test-utils'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { serviceCapabilities } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { networkSupervisor } from '../src/index.ts'
import { snap } from './helpers.ts'
import type { NetworkSupervisor } from '../src/index.ts'
import type { CleanupBroadcaster, HoldfastEvents } from '@holdfast/interface'
import type { Reconnector } from '@holdfast/reconnector'
import type { FakeClock } from '@holdfast/test-utils'
import type { Libp2p, PeerId } from '@libp2p/interface'

const SETTLE = 400

type Services = Record<string, unknown> & { network: NetworkSupervisor, broadcaster: CleanupBroadcaster, reconnector: Reconnector }
type Node = Libp2p<Services>

async function errorOf (promise: Promise<unknown>): Promise<Error> {
  return promise.then(() => { throw new Error('expected a rejection') }, (err: Error) => err)
}

/** A TCP server on 127.0.0.1 that accepts and never speaks: a dial to it hangs in the handshake */
interface SilentServer {
  port: number
  /** resolves when the next socket is accepted */
  accepted(): Promise<void>
  close(): void
}

async function silentServer (): Promise<SilentServer> {
  const sockets: net.Socket[] = []
  const server = net.createServer(socket => { sockets.push(socket) })
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: async () => new Promise(resolve => { server.once('connection', () => { resolve() }) }),
    close: () => {
      sockets.forEach(s => s.destroy())
      server.close()
    }
  }
}

/**
 * A path-selector stand-in whose `report` throws (the real one does not): it makes
 * one step of an action fail, so the test can check that the others still run
 */
function throwingPathSelector (): (components: object) => { report(): void } {
  return (components) => {
    const service = {
      [serviceCapabilities]: ['@holdfast/path-selector'],
      report: () => { throw new Error('path selector exploded') }
    }
    registerService(components, service)
    return service
  }
}

describe('default processor on real nodes (real broadcaster and reconnector, fake clock)', () => {
  let clock: FakeClock
  const nodes: Array<Libp2p<any>> = []

  async function supervised (extra: Record<string, unknown> = {}, transport: 'memory' | 'tcp' = 'memory'): Promise<Node> {
    const node = await createNode({
      transport,
      services: {
        broadcaster: cleanupBroadcaster(),
        reconnector: reconnector({ clock, toleranceWindow: 1_000, random: () => 0.5 }),
        network: networkSupervisor({ clock, adapters: [] }),
        ...extra
      }
    }) as unknown as Node
    nodes.push(node)
    return node
  }

  async function plain (transport: 'memory' | 'tcp' = 'memory'): Promise<Libp2p<any>> {
    const node = await createNode({ transport })
    nodes.push(node)
    return node
  }

  /** one event through the settle window, then its result */
  async function act<T> (result: Promise<T>): Promise<T> {
    await clock.tickAsync(SETTLE)
    return result
  }

  beforeEach(() => {
    clock = createFakeClock()
  })

  afterEach(async () => {
    await stopAll(nodes)
    nodes.length = 0
  })

  it('offline pauses the reconnector (no attempt is spent); restore resumes it and the held peer comes back', async () => {
    const a = await supervised()
    const b = await plain()
    const network = a.services.network
    a.services.reconnector.watch(b.peerId)
    await connect(a, b)
    expect(await act(network.networkPathChanged(snap(1, 'available', { wifi: true })))).to.include({ success: true })

    expect(await act(network.networkPathChanged(snap(2, 'unavailable')))).to.include({ success: true })
    const attempts: number[] = []
    a.services.reconnector.addEventListener('peer:reconnecting', ({ detail }) => { attempts.push(detail.attempt) })
    await disconnect(a, b)
    expect(a.services.reconnector.state(b.peerId)).to.equal('held')
    await clock.tickAsync(20_000) // far past the tolerance window and the first delays
    expect(attempts).to.deep.equal([])
    expect(a.getConnections(b.peerId)).to.have.length(0)

    const recovered = new Promise(resolve => { a.services.reconnector.addEventListener('peer:recovered', resolve, { once: true }) })
    expect(await act(network.networkPathChanged(snap(3, 'available', { cellular: true })))).to.include({ success: true })
    await clock.tickAsync(2_000) // the resumed attempt comes within the first delay's jitter band
    await recovered
    expect(attempts).to.deep.equal([1])
    expect(a.getConnections(b.peerId)).to.have.length(1)
  })

  it('offline aborts in-flight dials (a TCP peer that never answers the handshake) and keeps existing connections', async () => {
    const a = await supervised({}, 'tcp')
    const b = await plain('tcp')
    await connect(a, b)
    const server = await silentServer()
    const silent = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    try {
      const accepted = server.accepted()
      const dial = errorOf(a.services.broadcaster.dial(multiaddr(`/ip4/127.0.0.1/tcp/${server.port}/p2p/${silent}`)))
      await accepted
      expect(a.services.broadcaster.pending(silent)).to.equal(1)

      expect(await act(a.services.network.networkPathChanged(snap(1, 'unavailable')))).to.include({ success: true })
      const err = await dial
      expect(err).to.have.property('name', 'ConnectionClosedError')
      expect(a.services.broadcaster.pending()).to.equal(0)
      expect(a.getConnections(b.peerId)).to.have.length(1)
    } finally {
      server.close()
    }
  })

  it('restore re-dials a relay through the broadcaster: a cleanup of the relay aborts the re-dial in flight, the action reports it, nothing is left', async () => {
    const a = await supervised({}, 'tcp')
    const server = await silentServer()
    const relay = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    await a.peerStore.merge(relay, { multiaddrs: [multiaddr(`/ip4/127.0.0.1/tcp/${server.port}`)], tags: { [TAGS.relayActive]: { value: 50 } } })
    const actions: Array<HoldfastEvents['network:action']> = []
    a.services.network.addEventListener('network:action', ({ detail }) => { actions.push(detail) })
    try {
      const accepted = server.accepted()
      // the first snapshot: restore, whose redial-relays step dials the relay's hanging address
      const result = a.services.network.networkPathChanged(snap(1, 'available', { wifi: true }))
      await clock.tickAsync(SETTLE)
      await accepted
      expect(a.services.broadcaster.pending(relay)).to.equal(1)

      const report = await a.services.broadcaster.cleanup(relay, 'manual')
      expect(report.dialsAborted).to.equal(1)
      const outcome = await result
      expect(outcome.success).to.equal(false)
      expect(outcome.error).to.match(/^restore: redial-relays failed: could not re-dial 1 of 1 relays/)
      expect(actions).to.have.length(1)
      expect(actions[0]).to.include({ action: 'restore', success: false, error: outcome.error })
      expect(a.getConnections(relay)).to.have.length(0)
      expectNoLeaks(a.services.network)
      // the broadcaster listens to the running node: only that remains
      expectNoLeaks(a.services.broadcaster, ['nodeListeners'])
    } finally {
      server.close()
    }
  })

  it('restore re-dials relays (tagged relay-active) and resumes the reconnector', async () => {
    const a = await supervised()
    const relay = await plain()
    await connect(a, relay)
    await a.peerStore.merge(relay.peerId, { tags: { [TAGS.relayActive]: { value: 50 } } })
    expect(await act(a.services.network.networkPathChanged(snap(1, 'unavailable')))).to.include({ success: true })
    await disconnect(a, relay)

    const redialed = onceEvent(a, 'peer:connect', peer => peer.equals(relay.peerId))
    const result = await act(a.services.network.networkPathChanged(snap(2, 'available', { wifi: true })))
    expect(result).to.include({ success: true })
    await redialed
    expect(a.getConnections(relay.peerId)).to.have.length(1)
  })

  it('restore closes the connections of a peer that does not answer its ping, not of one whose ping our own stream limit refused', async () => {
    const a = await supervised()
    const busy = await plain()
    const mute = await plain()
    await connect(a, busy)
    await connect(a, mute)
    // libp2p's ping allows one outbound stream per connection: hold it, as an in-flight
    // heartbeat of the path selector or libp2p's connection monitor would
    const inFlight = await a.getConnections(busy.peerId)[0].newStream('/ipfs/ping/1.0.0')
    await mute.unhandle('/ipfs/ping/1.0.0')
    expect(await act(a.services.network.networkPathChanged(snap(1, 'unavailable')))).to.include({ success: true })

    const muteGone = onceEvent(a, 'peer:disconnect', peer => peer.equals(mute.peerId))
    const result = await act(a.services.network.networkPathChanged(snap(2, 'available', { wifi: true })))
    expect(result).to.include({ success: true })
    await muteGone
    expect(a.getConnections(mute.peerId)).to.have.length(0)
    expect(a.getConnections(busy.peerId).map(c => c.status)).to.deep.equal(['open'])
    await inFlight.close()
  })

  it('cleanup-only closes every connection and fails pending work (broadcaster.track)', async () => {
    const a = await supervised()
    const [b, c] = [await plain(), await plain()]
    await connect(a, b)
    await connect(a, c)
    const pending = errorOf(a.services.broadcaster.track(b.peerId, async (signal) => new Promise((_resolve, reject) => {
      signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
    })))
    const cleaned: string[] = []
    a.services.broadcaster.subscribe('peer:cleaned', ({ detail }) => { cleaned.push(detail.reason) })

    const result = await act(a.services.network.cleanupConnections('user-logout'))
    expect(result).to.include({ success: true })
    expect(await pending).to.have.property('name', 'ConnectionClosedError')
    expect(a.getConnections()).to.have.length(0)
    expect(cleaned).to.deep.equal(['user-logout', 'user-logout'])
    expectNoLeaks(a.services.network)
  })

  it('a logout lets go of the watched peers: the reconnector removes them, and the restore after it does not bring them back', async () => {
    const a = await supervised()
    const b = await plain()
    a.services.reconnector.watch(b.peerId)
    await connect(a, b)
    const removed: string[] = []
    a.services.reconnector.addEventListener('peer:removed', ({ detail }) => { removed.push(detail.reason) })

    expect(await act(a.services.network.cleanupConnections('user-logout'))).to.include({ success: true })
    expect(removed).to.deep.equal(['cleaned-up'])
    expect(a.services.reconnector.state(b.peerId)).to.equal(undefined)
    expect(await act(a.services.network.networkPathChanged(snap(1, 'available', { wifi: true })))).to.include({ success: true })
    await clock.tickAsync(20_000) // past the window and every first attempt: none is made
    expect(a.services.reconnector.held()).to.deep.equal([])
    expect(a.getConnections(b.peerId)).to.have.length(0)
  })

  it('force-reconnect closes everything, then re-dials the relays and retries the held peers at once', async () => {
    const a = await supervised()
    const [relay, b] = [await plain(), await plain()]
    await connect(a, relay)
    await connect(a, b)
    a.services.reconnector.watch(b.peerId)
    await a.peerStore.merge(relay.peerId, { tags: { [TAGS.relayActive]: { value: 50 } } })
    const closed = onceEvent(a, 'peer:disconnect', peer => peer.equals(b.peerId))
    const back = onceEvent(a, 'peer:connect', peer => peer.equals(b.peerId))

    const result = await act(a.services.network.forceReconnect('stale-connection-suspected'))
    expect(result).to.include({ success: true })
    await closed
    await back // reconnectNow: no tolerance window after a deliberate close
    expect(a.getConnections(relay.peerId)).to.have.length(1)
    expect(a.getConnections(b.peerId)).to.have.length(1)
  })

  it('a step that throws (path-selector stand-in) is reported in error, and the other steps still ran', async () => {
    const a = await supervised({ pathSelector: throwingPathSelector() })
    const [relay, b] = [await plain(), await plain()]
    await connect(a, relay)
    await connect(a, b) // stays connected: restore's validation pings it and reports to the selector
    await a.peerStore.merge(relay.peerId, { tags: { [TAGS.relayActive]: { value: 50 } } })
    // offline: pause ran before mark-paths-suspect threw
    const offline = await act(a.services.network.networkPathChanged(snap(1, 'unavailable')))
    expect(offline.success).to.equal(false)
    expect(offline.error).to.match(/mark-paths-suspect failed: path selector exploded/)
    await disconnect(a, relay)

    // restore: validate-paths throws first; redial-relays and resume-reconnector still run
    const redialed = onceEvent(a, 'peer:connect', (peer: PeerId) => peer.equals(relay.peerId))
    const restore = await act(a.services.network.networkPathChanged(snap(2, 'available', { wifi: true })))
    await redialed
    expect(restore.success).to.equal(false)
    expect(restore.error).to.match(/^restore: validate-paths failed/)
    expect(restore.error).to.not.match(/redial-relays|resume-reconnector/)
  })

  it('without a broadcaster, cleanup-only still closes every connection', async () => {
    const node = await createNode({ services: { network: networkSupervisor({ clock, adapters: [] }) } }) as unknown as Libp2p<{ network: NetworkSupervisor }>
    nodes.push(node)
    const b = await plain()
    await connect(node, b)
    expect(await act(node.services.network.cleanupConnections('manual-reset'))).to.include({ success: true })
    expect(node.getConnections()).to.have.length(0)
  })
})
