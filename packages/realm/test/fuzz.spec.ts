import { connect, createNode, stopAll } from '@holdfast/test-utils'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import fc from 'fast-check'
import { dhtKey, realmDhtSelector, realmDhtValidator } from '../src/dht.ts'
import { deriveKeys, seal } from '../src/keys.ts'
import { Sealed } from '../src/pb/realm.ts'
import { createMember, joined, PSK } from './fixtures.ts'
import type { RealmNode } from './fixtures.ts'
import type { Message } from '@libp2p/gossipsub'

type Validator = (peer: unknown, message: Message) => Promise<TopicValidatorResult>

describe('realm wire decoders under fuzzing', () => {
  let nodes: RealmNode[] = []
  let a: RealmNode
  let b: RealmNode
  let validate: Validator

  beforeEach(async () => {
    nodes = [a, b] = await Promise.all([createMember(), createMember()])
    validate = (a.services.realm as any).memberTopic.validate
  })

  afterEach(async () => {
    await stopAll(nodes)
  })

  /** what gossipsub hands the topic validator for a signed message from b */
  const fromB = (data: Uint8Array): Message => ({ type: 'signed', from: b.peerId, topic: 'x', data, sequenceNumber: 1n, signature: new Uint8Array(), key: b.peerId.publicKey as any })
  const totalRejected = (): number => Object.values(a.services.realm.stats().rejected).reduce((sum, n) => sum + n, 0)

  async function expectRejectedAll (inputs: fc.Arbitrary<Uint8Array>, runs = 300): Promise<void> {
    await fc.assert(fc.asyncProperty(inputs, async data => {
      const before = totalRejected()
      expect(await validate(b.peerId, fromB(data))).to.equal(TopicValidatorResult.Reject)
      expect(totalRejected()).to.equal(before + 1)
    }), { numRuns: runs })
    expect(a.services.realm.isMember(b.peerId)).to.be.false()
    expect(a.services.realm.members()).to.be.empty()
  }

  it('random bytes on the member-list topic are rejected and counted', async () => {
    await expectRejectedAll(fc.uint8Array({ maxLength: 2048 }))
  })

  it('random plaintext sealed with the right key (reaching the announcement decoder) is rejected', async () => {
    const keys = deriveKeys(PSK)
    await expectRejectedAll(fc.uint8Array({ maxLength: 1024 }).map(plain => Sealed.encode(seal(keys, 'announcement', plain))))
  })

  it('truncated genuine announcements are rejected', async () => {
    const genuine = await new Promise<Uint8Array>(resolve => {
      // b's own announcement, built as it would publish it
      void (b.services.realm as any).announcements.build(false).then(resolve)
    })
    await expectRejectedAll(fc.integer({ min: 0, max: genuine.length - 1 }).map(n => genuine.subarray(0, n)), 100)
    // the whole one is accepted: the decoder is not simply refusing everything
    expect(await validate(b.peerId, fromB(genuine))).to.equal(TopicValidatorResult.Accept)
  })

  it('oversized messages are rejected before decoding', async () => {
    const before = a.services.realm.stats().rejected['too-big']
    await expectRejectedAll(fc.integer({ min: 16 * 1024 + 1, max: 64 * 1024 }).map(n => new Uint8Array(n)), 10)
    expect(a.services.realm.stats().rejected['too-big']).to.equal(before + 10)
  })

  it('random bytes on the auth protocol never make the sender a member', async () => {
    await connect(b, a)
    await joined(a, b.peerId)
    const protocol = `/holdfast/realm/${a.services.realm.id}/auth/1.0.0`
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), async junk => {
      // a plain node with a fresh identity each time: a denies every sender it rejected
      const sender = await createNode()
      try {
        const conn = await sender.dial(a.getMultiaddrs())
        const failed = a.services.realm.stats().authFailed
        const stream = await conn.newStream(protocol)
        const closed = new Promise<void>(resolve => { stream.addEventListener('close', () => { resolve() }) })
        stream.send(junk)
        await stream.close().catch(() => {})
        await closed
        // a counts the failure before it aborts the stream, so it is visible once the sender sees the close
        expect(a.services.realm.stats().authFailed).to.be.greaterThan(failed)
      } finally {
        await sender.stop()
      }
    }), { numRuns: 15 })
    expect(a.services.realm.members().map(m => m.peerId.toString())).to.deep.equal([b.peerId.toString()])
  })

  it('random, truncated and oversized DHT record values are rejected by the validator and never win the selector', async () => {
    const key = dhtKey(a.services.realm.id, peerIdFromString(b.peerId.toString()))
    let rejected = 0
    await fc.assert(fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 2048 }), fc.integer({ min: 16 * 1024 + 1, max: 40 * 1024 }).map(n => new Uint8Array(n))), async value => {
      await expect(realmDhtValidator(key, value)).to.eventually.be.rejected()
      rejected++
    }), { numRuns: 300 })
    expect(rejected).to.equal(300)
    expect(await realmDhtSelector(key, [new Uint8Array([1, 2, 3])])).to.equal(0)
  })

  it('random bytes on the address-book protocol are rejected and counted on a relay member', async () => {
    const relay = await createMember({}, { services: { relay: circuitRelayServer() } })
    nodes.push(relay)
    await connect(b, relay)
    await joined(relay, b.peerId)
    const conn = b.getConnections(relay.peerId)[0]
    const protocol = `/holdfast/realm/${relay.services.realm.id}/addrbook/1.0.0`
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), async junk => {
      const before = relay.services.realm.stats().rejected.malformed
      const stream = await conn.newStream(protocol)
      const closed = new Promise<void>(resolve => { stream.addEventListener('close', () => { resolve() }) })
      stream.send(junk)
      await stream.close().catch(() => {})
      await closed
      expect(relay.services.realm.stats().rejected.malformed).to.be.greaterThan(before)
    }), { numRuns: 20 })
    expect(relay.services.realm.members().map(m => m.peerId.toString())).to.deep.equal([b.peerId.toString()])
  })
})
