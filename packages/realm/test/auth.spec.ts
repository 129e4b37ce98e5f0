import { connect, createFakeClock, createNode, expectNoLeaks, stopAll } from '@holdfast/test-utils'
import { pbStream } from '@libp2p/utils'
import { expect } from 'aegir/chai'
import { AuthMessage } from '../src/pb/realm.ts'
import { createMember, joined, OTHER_PSK, PSK, subscribed, topicOf } from './fixtures.ts'
import type { RealmNode } from './fixtures.ts'
import type { Libp2p } from '@libp2p/interface'

describe('realm auth and membership', () => {
  let nodes: RealmNode[] = []
  let others: Libp2p[] = []

  afterEach(async () => {
    await stopAll([...nodes, ...others])
    others = []
    for (const node of nodes) {
      expectNoLeaks(node.services.realm)
    }
    nodes = []
  })

  it('two members authenticate each other in both directions and are tagged realm-member', async () => {
    const [a, b] = nodes = await Promise.all([createMember(), createMember()])
    await connect(a, b)
    await Promise.all([joined(a, b.peerId), joined(b, a.peerId)])

    expect(a.services.realm.isMember(b.peerId)).to.be.true()
    expect(b.services.realm.isMember(a.peerId)).to.be.true()
    expect(a.services.realm.members().map(m => m.peerId.toString())).to.deep.equal([b.peerId.toString()])
    expect(a.services.realm.members()[0].authenticated).to.be.true()
    expect((await a.peerStore.get(b.peerId)).tags.get('realm-member')?.value).to.be.greaterThan(0)
    expect((await b.peerStore.get(a.peerId)).tags.get('realm-member')?.value).to.be.greaterThan(0)
    expect(a.services.realm.stats().authSucceeded).to.equal(1)
    expect(b.services.realm.stats().authSucceeded).to.equal(1)
  })

  it('an outsider with another PSK fails auth in both directions with RealmAuthError and never becomes a member', async () => {
    const clock = createFakeClock()
    const [a, b, outsider] = nodes = await Promise.all([
      createMember({ clock }),
      createMember({ clock }),
      createMember({ psk: OTHER_PSK, clock })
    ])
    await connect(a, b)
    await Promise.all([joined(a, b.peerId), joined(b, a.peerId)])

    // the member dials the outsider: the member's auth fails at once, the outsider's waits for a proof that never comes
    const out = await connect(a, outsider)
    const outsiderSide = outsider.getConnections(a.peerId)[0]
    const memberDialled = a.services.realm.authenticate(out)
    const outsiderAnswered = outsider.services.realm.authenticate(outsiderSide)
    await expect(memberDialled).to.eventually.be.rejected.with.property('name', 'RealmAuthError')

    // the outsider dials the other member
    const back = await connect(outsider, b)
    const memberSide = b.getConnections(outsider.peerId)[0]
    await expect(outsider.services.realm.authenticate(back)).to.eventually.be.rejected.with.property('name', 'RealmAuthError')
    const memberAnswered = b.services.realm.authenticate(memberSide)

    await clock.tickAsync(5_000)
    await expect(outsiderAnswered).to.eventually.be.rejected.with.property('name', 'RealmAuthError')
    await expect(memberAnswered).to.eventually.be.rejected.with.property('name', 'RealmAuthError')

    for (const member of [a, b]) {
      expect(member.services.realm.isMember(outsider.peerId)).to.be.false()
      expect(member.services.realm.members().map(m => m.peerId.toString())).to.not.include(outsider.peerId.toString())
      expect((await member.peerStore.get(outsider.peerId)).tags.has('realm-member')).to.be.false()
    }
    expect(outsider.services.realm.members()).to.be.empty()
    expect(a.services.realm.stats().authFailed).to.be.greaterThan(0)
    expect(b.services.realm.stats().authFailed).to.be.greaterThan(0)
  })

  it('an outsider listening on the realm\'s auth protocol with a made-up proof is refused', async () => {
    const [a, impostor] = nodes = await Promise.all([createMember(), createMember({ psk: OTHER_PSK })])
    // the realm ID is public (it names the protocol); the keys are not
    await impostor.handle(`/holdfast/realm/${a.services.realm.id}/auth/1.0.0`, async (stream) => {
      const pb = pbStream(stream).pb(AuthMessage)
      await pb.read()
      await pb.write({ nonce: new Uint8Array(32).fill(1), proof: new Uint8Array(32).fill(2) })
    })
    const conn = await connect(a, impostor)
    await expect(a.services.realm.authenticate(conn)).to.eventually.be.rejected.with.property('name', 'RealmAuthError')
    expect(a.services.realm.isMember(impostor.peerId)).to.be.false()
  })

  it('garbage on the auth stream is refused, counted as malformed, and makes nobody a member', async () => {
    const [a, b] = nodes = await Promise.all([createMember(), createMember()])
    const conn = await connect(b, a)
    await joined(a, b.peerId)
    // a plain libp2p node (no realm of its own, so no auth stream of its own) sends junk instead of a hello
    const plain = await createNode()
    others.push(plain)
    const extra = await plain.dial(a.getMultiaddrs())
    const stream = await extra.newStream(`/holdfast/realm/${a.services.realm.id}/auth/1.0.0`)
    const closed = new Promise<void>(resolve => { stream.addEventListener('close', () => { resolve() }) })
    stream.send(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]))
    await closed
    expect(a.services.realm.stats().authFailures.malformed).to.equal(1)
    expect(a.services.realm.members().map(m => m.peerId.toString())).to.deep.equal([b.peerId.toString()])
    expect(conn.status).to.equal('open')
  })

  it('an outsider subscribed to the topic of a non-exclusive realm receives announcements it cannot open', async () => {
    const [a, outsider] = nodes = await Promise.all([createMember({ exclusive: false }), createMember({ psk: OTHER_PSK, exclusive: false })])
    const topic = topicOf(a)
    outsider.services.pubsub.subscribe(topic)
    await connect(outsider, a)
    await subscribed(a, outsider.peerId, topic)
    const received = new Promise<{ from: any, data: Uint8Array }>(resolve => {
      outsider.services.pubsub.addEventListener('message', ({ detail }) => {
        if (detail.topic === topic && detail.type === 'signed') {
          resolve({ from: detail.from, data: detail.data })
        }
      })
    })
    await a.services.realm.announce()
    const message = await received
    expect(await (outsider.services.realm as any).openAnnouncement(message.from, message.data)).to.equal('unsealed')
    expect(outsider.services.realm.members()).to.be.empty()
  })

  it('rejects a PSK shorter than 32 bytes without echoing it', async () => {
    await expect(createMember({ psk: new Uint8Array(31) })).to.eventually.be.rejected.with.property('name', 'InvalidConfigError')
    await expect(createMember({ psk: 'c2VjcmV0' })).to.eventually.be.rejected.with.property('message').that.does.not.include('c2VjcmV0')
    expect(PSK.length).to.equal(32)
  })

  it('rejects non-positive or non-numeric timings and sizes with InvalidConfigError', async () => {
    for (const init of [{ announceInterval: 0 }, { memberTtl: -1 }, { authTimeout: Number.NaN }, { maxMessageSize: Infinity }]) {
      await expect(createMember(init)).to.eventually.be.rejected.with.property('name', 'InvalidConfigError')
    }
  })
})
