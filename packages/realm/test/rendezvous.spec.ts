import { createHash, createHmac, hkdfSync } from 'node:crypto'
import { createFakeClock, createNode, expectNoLeaks, stopAll } from '@holdfast/test-utils'
import { dhtServer, hasCircuitAddr, joinDht, kad, relayServer } from '@holdfast/test-utils/infrastructure'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { RENDEZVOUS_EPOCH, RENDEZVOUS_FIND_TIMEOUT, RENDEZVOUS_PROVIDE_TIMEOUT, RENDEZVOUS_REPROVIDE_INTERVAL, RENDEZVOUS_RETRY_DELAY } from '../src/constants.ts'
import { deriveKeys } from '../src/keys.ts'
import { Rendezvous, rendezvousCid } from '../src/rendezvous.ts'
import { OTHER_PSK, PSK } from './fixtures.ts'
import { member } from './plain-infrastructure.ts'
import type { RealmKeys } from '../src/keys.ts'
import type { FakeClock } from '@holdfast/test-utils'
import type { ContentRouting, Libp2p, PeerId, PeerInfo } from '@libp2p/interface'

const KEYS = deriveKeys(PSK)
const OTHER_KEYS = deriveKeys(OTHER_PSK)
/** the middle of an epoch of Unix time: nowhere near a boundary */
const NOW = 20_000 * RENDEZVOUS_EPOCH + RENDEZVOUS_EPOCH / 2
const EPOCH = 20_000

async function collect (providers: AsyncIterable<PeerInfo>): Promise<PeerInfo[]> {
  const out: PeerInfo[] = []
  for await (const provider of providers) {
    out.push(provider)
  }
  return out
}

/** the node's content routing, with every provide, cancel and lookup written down */
function recorded (routing: ContentRouting): { routing: ContentRouting, provided: string[], outcomes: string[], cancelled: string[], looked: string[] } {
  const log = { provided: [] as string[], outcomes: [] as string[], cancelled: [] as string[], looked: [] as string[] }
  const wrapped = Object.create(routing) as ContentRouting
  wrapped.provide = async (cid, opts) => {
    log.provided.push(cid.toString())
    try {
      await routing.provide(cid, opts)
      log.outcomes.push('ok')
    } catch (err: any) {
      log.outcomes.push(err.name)
      throw err
    }
  }
  wrapped.cancelReprovide = async (cid, opts) => {
    log.cancelled.push(cid.toString())
    await routing.cancelReprovide(cid, opts)
  }
  wrapped.findProviders = (cid, opts) => {
    log.looked.push(cid.toString())
    return routing.findProviders(cid, opts)
  }
  return { routing: wrapped, ...log }
}

const cidOf = (epoch: number, keys: RealmKeys = KEYS): string => rendezvousCid(keys, epoch).toString()

describe('rendezvous CID', () => {
  it('is a CIDv1, raw, sha2-256 of HMAC-SHA256(rendezvousKey, "holdfast/realm/rendezvous" ‖ epoch as 8 bytes big-endian)', () => {
    // recomputed with node:crypto, from the PSK, as the spec words it
    const key = Buffer.from(hkdfSync('sha256', PSK, 'holdfast/realm/v1', 'rendezvous-key', 32))
    expect(new Uint8Array(key)).to.deep.equal(KEYS.rendezvousKey)
    const epoch = Buffer.alloc(8)
    epoch.writeBigUInt64BE(BigInt(EPOCH))
    const mac = createHmac('sha256', key).update('holdfast/realm/rendezvous').update(epoch).digest()
    const expected = CID.createV1(0x55, createDigest(0x12, createHash('sha256').update(mac).digest()))
    expect(cidOf(EPOCH)).to.equal(expected.toString())
    // pinned: members on different versions must keep meeting under the same CID
    expect(cidOf(0)).to.equal('bafkreigkywmy2lvsbwvymjefyvw44qfyj3bcmo2mkgt3pqko65nnqfgnzq')
  })

  it('changes with the epoch and the PSK, and owes nothing to the public realm ID', () => {
    const cids = [0, 1, EPOCH, EPOCH + 1].map(e => cidOf(e))
    expect(new Set(cids).size).to.equal(cids.length)
    expect(cidOf(EPOCH, OTHER_KEYS)).to.not.equal(cidOf(EPOCH))
    expect(KEYS.rendezvousKey).to.not.deep.equal(KEYS.authKey)
    expect(KEYS.rendezvousKey).to.not.deep.equal(KEYS.sealKey)
    // the same keys under another realm ID give the same CID: the realm ID does not enter it
    expect(cidOf(EPOCH, { ...KEYS, realmId: OTHER_KEYS.realmId })).to.equal(cidOf(EPOCH))
    const cid = rendezvousCid(KEYS, EPOCH)
    const realmIdBytes = uint8ArrayFromString(KEYS.realmId, 'base16')
    expect(cid.toString()).to.not.include(KEYS.realmId)
    expect(Buffer.from(cid.bytes).includes(Buffer.from(realmIdBytes))).to.be.false()
    expect(cid.toString()).to.not.equal(CID.createV1(0x55, createDigest(0x12, createHash('sha256').update(KEYS.realmId).digest())).toString())
  })

  it('refuses an epoch that is negative, fractional or beyond 2^53', () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) {
      expect(() => rendezvousCid(KEYS, bad)).to.throw().with.property('name', 'InvalidArgumentError')
    }
  })
})

describe('rendezvous through a DHT and a relay outside the realm', () => {
  let nodes: Array<Libp2p<any>> = []
  let rendezvous: Rendezvous[] = []
  let clock: FakeClock

  beforeEach(() => {
    clock = createFakeClock(NOW)
  })

  afterEach(async () => {
    await Promise.all(rendezvous.map(async r => r.stop()))
    await stopAll(nodes)
    for (const r of rendezvous) {
      expectNoLeaks(r)
    }
    nodes = []
    rendezvous = []
  })

  const start = (node: Libp2p, keys = KEYS, routing: ContentRouting = node.contentRouting, reprovideInterval?: number): Rendezvous => {
    const r = new Rendezvous({ keys, peerId: node.peerId, contentRouting: routing, clock, log: node.logger.forComponent('holdfast:realm:rendezvous'), reprovideInterval })
    rendezvous.push(r)
    r.start()
    return r
  }

  it('members find each other under the PSK-derived CID and reach each other through the relay', async () => {
    const [server, relay] = await Promise.all([dhtServer(), relayServer()])
    nodes.push(server, relay)
    const nodesStarted = performance.now()
    const [a, b] = await Promise.all([member(relay), member(relay)])
    nodes.push(a, b)
    await Promise.all([hasCircuitAddr(a), hasCircuitAddr(b), joinDht(a, server), joinDht(b, server)])

    const started = performance.now()
    const [ra, rb] = [start(a), start(b)]
    // join the rounds start() began
    await Promise.all([ra.provide(), rb.provide()])
    const fromA = await collect(ra.find())
    const elapsed = { sinceRendezvousStart: Math.round(performance.now() - started), sinceNodesStart: Math.round(performance.now() - nodesStarted) }
    const fromB = await collect(rb.find())

    expect(fromA.map(p => p.id.toString())).to.deep.equal([b.peerId.toString()])
    expect(fromB.map(p => p.id.toString())).to.deep.equal([a.peerId.toString()])
    const circuit = fromA[0].multiaddrs.map(String).find(ma => ma.includes(`/p2p/${relay.peerId.toString()}/p2p-circuit`))
    expect(circuit, 'a circuit address through the relay').to.be.a('string')
    expect(fromB[0].multiaddrs.map(String).some(ma => ma.includes(`/p2p/${relay.peerId.toString()}/p2p-circuit`))).to.be.true()
    // the introduction is usable: a dials b through the relay
    const target = circuit?.endsWith(`/p2p/${b.peerId.toString()}`) === true ? circuit : `${circuit}/p2p/${b.peerId.toString()}`
    const connection = await a.dial(multiaddr(target))
    expect(connection.remotePeer.equals(b.peerId)).to.be.true()
    expect(connection.remoteAddr.toString()).to.include('/p2p-circuit')
    // the servers saw only the opaque CID: the server's provider store holds a and b under it
    const stored = await (server.services.dht as any).providers.getProviders(rendezvousCid(KEYS, EPOCH))
    expect(stored.map(String).sort()).to.deep.equal([a.peerId.toString(), b.peerId.toString()].sort())

    await ra.stop()
    expectNoLeaks(ra)
    // a's kad-dht no longer holds its own record, so it will not re-provide it
    const own = await (a.services.dht as any).providers.getProviders(rendezvousCid(KEYS, EPOCH))
    expect(own.map(String)).to.not.include(a.peerId.toString())
    // written to the mocha output for the report; not asserted
    process.stdout.write(`      rendezvous: a found b ${elapsed.sinceRendezvousStart} ms after both rendezvous started, ${elapsed.sinceNodesStart} ms after both member nodes started\n`)
  })

  it('a node with another PSK finds nobody under its own CID, and members never see it', async () => {
    const server = await dhtServer()
    nodes.push(server)
    const [a, b, c, outsider] = await Promise.all([member(), member(), member(), member()])
    nodes.push(a, b, c, outsider)
    await Promise.all([a, b, c, outsider].map(async node => joinDht(node, server)))
    const [ra, rb, rc, ro] = [start(a), start(b), start(c), start(outsider, OTHER_KEYS)]
    await Promise.all([ra, rb, rc, ro].map(async r => r.provide()))

    expect((await collect(ro.find())).map(p => p.id.toString())).to.deep.equal([])
    expect((await collect(ra.find())).map(p => p.id.toString()).sort()).to.deep.equal([b.peerId.toString(), c.peerId.toString()].sort())
    expect(await collect(ra.find({ limit: 1 }))).to.have.lengthOf(1)
    expect(cidOf(EPOCH, OTHER_KEYS)).to.not.equal(cidOf(EPOCH))
  })

  it('provides the next epoch in the last interval before its boundary, looks up the previous one after it, and cancels past epochs', async () => {
    // a DHT alone, which resolves provides at once: the timing is all that is looked at
    const node = await member(undefined, kad({ clientMode: true, allowQueryWithZeroPeers: true }))
    nodes.push(node)
    const boundary = (EPOCH + 1) * RENDEZVOUS_EPOCH
    clock = createFakeClock(boundary - RENDEZVOUS_REPROVIDE_INTERVAL - 1)
    const log = recorded(node.contentRouting)
    const r = start(node, KEYS, log.routing)
    await r.provide()
    expect(log.provided).to.deep.equal([cidOf(EPOCH)])

    clock.tick(RENDEZVOUS_REPROVIDE_INTERVAL - 1)
    expect(log.provided, 'not due yet').to.have.lengthOf(1)
    clock.tick(1)
    await r.provide()
    expect(log.provided.slice(1)).to.deep.equal([cidOf(EPOCH), cidOf(EPOCH + 1)])

    clock.tick(RENDEZVOUS_REPROVIDE_INTERVAL)
    await r.provide()
    expect(log.provided.slice(3)).to.deep.equal([cidOf(EPOCH + 1)])
    expect(log.cancelled).to.deep.equal([cidOf(EPOCH)])
    expect(log.outcomes.every(o => o === 'ok')).to.be.true()

    // only our own record is there, and it is never yielded
    expect(await collect(r.find())).to.deep.equal([])
    expect(log.looked).to.deep.equal([cidOf(EPOCH + 1), cidOf(EPOCH)])

    await r.stop()
    expect(log.cancelled).to.deep.equal([cidOf(EPOCH), cidOf(EPOCH + 1)])
    expectNoLeaks(r)
  })

  it('with no DHT peer or no content router, a provide round fails quietly and is retried with a backoff', async () => {
    // kad-dht in client mode waits for a first DHT peer; a node without any DHT has no content router
    const [lonely, bare] = await Promise.all([member(), createNode({ transport: 'tcp' })])
    nodes.push(lonely, bare)
    const waiting = recorded(lonely.contentRouting)
    const none = recorded(bare.contentRouting)
    const [rw, rn] = [start(lonely, KEYS, waiting.routing), start(bare, KEYS, none.routing)]

    await rn.provide()
    expect(none.outcomes).to.deep.equal(['NoContentRoutersError'])
    await expect(collect(rn.find())).to.eventually.be.rejected.with.property('name', 'NoContentRoutersError')

    const round = rw.provide()
    expect(rw.internalSizes()).to.include({ provides: 1, listeners: 1 })
    clock.tick(RENDEZVOUS_PROVIDE_TIMEOUT)
    await round
    expect(waiting.outcomes).to.deep.equal(['TimeoutError'])

    // first retry after RENDEZVOUS_RETRY_DELAY, the next one after twice that
    clock.tick(RENDEZVOUS_RETRY_DELAY - 1)
    expect(waiting.provided).to.have.lengthOf(1)
    clock.tick(1)
    expect(waiting.provided).to.have.lengthOf(2)
    clock.tick(RENDEZVOUS_PROVIDE_TIMEOUT)
    await rw.provide()
    clock.tick(2 * RENDEZVOUS_RETRY_DELAY - 1)
    expect(waiting.provided).to.have.lengthOf(2)
    clock.tick(1)
    expect(waiting.provided).to.have.lengthOf(3)

    // a find with no DHT peer ends quietly at its timeout; the caller's abort rejects
    const finding = collect(rw.find())
    clock.tick(RENDEZVOUS_FIND_TIMEOUT)
    expect(await finding).to.deep.equal([])
    const controller = new AbortController()
    const aborted = collect(rw.find({ signal: controller.signal }))
    controller.abort()
    await expect(aborted).to.eventually.be.rejected.with.property('name', 'AbortError')

    await Promise.all([rw.stop(), rn.stop()])
    // kad-dht stored its own record before walking: stopping cancels it
    expect(waiting.cancelled).to.deep.equal([cidOf(EPOCH)])
    await expect(collect(rw.find())).to.eventually.be.rejected.with.property('name', 'NotStartedError')
  })

  it('refuses a reprovide interval that is not a positive number of ms up to one epoch', () => {
    const init = { keys: KEYS, peerId: undefined as unknown as PeerId, contentRouting: undefined as unknown as ContentRouting, clock: createFakeClock(), log: undefined as any }
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, RENDEZVOUS_EPOCH + 1, '10' as unknown as number]) {
      expect(() => new Rendezvous({ ...init, reprovideInterval: bad }))
        .to.throw().with.property('option', 'reprovideInterval')
    }
  })
})
