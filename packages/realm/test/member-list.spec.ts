import { connect, createFakeClock, onceEvent, stopAndExpectNoLeaks } from '@holdfast/test-utils'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { expect } from 'aegir/chai'
import { createMember, joined, learnThroughHub, onceRealm, OTHER_PSK, subscribed, topicOf } from './fixtures.ts'
import type { RealmNode } from './fixtures.ts'

describe('realm member list', () => {
  let nodes: RealmNode[] = []

  afterEach(async () => {
    await stopAndExpectNoLeaks(nodes, 'realm')
    nodes = []
  })

  /** a and c are members that only meet through the hub b: they learn of each other from announcements */
  async function hubOfThree (init = {}): Promise<RealmNode[]> {
    const [a, hub, c] = nodes = await Promise.all([createMember(init), createMember(init), createMember(init)])
    await connect(a, hub)
    await connect(c, hub)
    const topic = topicOf(a)
    await Promise.all([subscribed(hub, a.peerId, topic), subscribed(hub, c.peerId, topic), subscribed(a, hub.peerId, topic), subscribed(c, hub.peerId, topic)])
    return [a, hub, c]
  }

  it('members that never connected learn of each other from sealed announcements', async () => {
    const clock = createFakeClock()
    const [a, , c] = await hubOfThree({ clock })
    const learned = joined(a, c.peerId)
    await c.services.realm.announce()
    await learned
    const member = a.services.realm.members().find(m => m.peerId.equals(c.peerId))
    expect(member?.authenticated).to.be.false()
    expect(member?.addrs.map(String)).to.deep.equal(c.getMultiaddrs().map(ma => ma.decapsulateCode(421).toString()))
    expect(a.services.realm.stats().announcementsAccepted).to.be.greaterThan(0)
  })

  it('a recorded announcement re-published later is rejected as a replay', async () => {
    const clock = createFakeClock()
    const [a, hub] = await hubOfThree({ clock })
    const topic = topicOf(a)
    const recorded = new Promise<Uint8Array>(resolve => {
      hub.services.pubsub.addEventListener('message', ({ detail }) => {
        if (detail.topic === topic && detail.type === 'signed' && detail.from.equals(a.peerId)) {
          resolve(detail.data)
        }
      })
    })
    await a.services.realm.announce()
    const data = await recorded
    // a newer announcement supersedes it, then the old bytes come back (re-signed by gossipsub as a new message)
    clock.tick(1000)
    await a.services.realm.announce()
    const rejected = onceRealm(hub, 'announcement:rejected', d => d.from.equals(a.peerId))
    await a.services.pubsub.publish(topic, data).catch(() => {})
    expect(await rejected).to.have.property('reason', 'replay')
    expect(hub.services.realm.stats().rejected.replay).to.equal(1)
    expect(hub.services.realm.isMember(a.peerId)).to.be.true()
  })

  it('a member stopped without leaving expires after memberTtl (member:left, expired)', async () => {
    const clock = createFakeClock()
    const memberTtl = 3_000
    const [a, b] = nodes = await Promise.all([createMember({ clock, memberTtl, announceInterval: 1_000 }), createMember({ clock, memberTtl, announceInterval: 1_000 })])
    await connect(a, b)
    await joined(a, b.peerId)
    const gone = onceEvent(a, 'peer:disconnect', p => p.equals(b.peerId))
    await b.stop()
    await gone
    const left = onceRealm(a, 'member:left', d => d.peer.equals(b.peerId))
    await clock.tickAsync(memberTtl - 1)
    expect(a.services.realm.isMember(b.peerId)).to.be.true()
    await clock.tickAsync(memberTtl)
    expect(await left).to.have.property('reason', 'expired')
    expect(a.services.realm.isMember(b.peerId)).to.be.false()
    expect((await a.peerStore.get(b.peerId)).tags.has('realm-member')).to.be.false()
  })

  it('a connected member does not expire while its announcements stop', async () => {
    const clock = createFakeClock()
    const [a, b] = nodes = await Promise.all([createMember({ clock, memberTtl: 3_000 }), createMember({ clock, memberTtl: 3_000 })])
    await connect(a, b)
    await joined(a, b.peerId)
    await clock.tickAsync(10_000)
    expect(a.services.realm.isMember(b.peerId)).to.be.true()
  })

  it('leave() drops the member everywhere at once (member:left, left)', async () => {
    const clock = createFakeClock()
    const [a, hub, c] = await hubOfThree({ clock })
    await c.services.realm.announce()
    await joined(a, c.peerId)
    const left = onceRealm(a, 'member:left', d => d.peer.equals(c.peerId))
    await c.services.realm.leave()
    expect(await left).to.have.property('reason', 'left')
    expect(a.services.realm.isMember(c.peerId)).to.be.false()
    expect(c.services.realm.members()).to.be.empty()
    expect(hub.services.realm.isMember(c.peerId)).to.be.false()
  })

  it('announces on every interval of the injected clock', async () => {
    const clock = createFakeClock()
    const [a] = await hubOfThree({ clock, announceInterval: 1_000 })
    const sent = a.services.realm.stats().announcementsSent
    await clock.tickAsync(1_200)
    await clock.tickAsync(1_200)
    expect(a.services.realm.stats().announcementsSent).to.be.at.least(sent + 2)
  })

  it('a listed member that answers and is not of the realm any more leaves with auth-failed, unprotected', async () => {
    const clock = createFakeClock()
    const privateKey = await generateKeyPair('Ed25519')
    const [a, hub] = nodes = await Promise.all([createMember({ clock }), createMember({ clock })])
    const c = await createMember({ clock }, { config: { privateKey } })
    nodes.push(c)
    await learnThroughHub(a, hub, c)
    // the same peer ID comes back with another PSK, and a dials it
    await c.stop()
    const other = await createMember({ clock, psk: OTHER_PSK, exclusive: false }, { config: { privateKey } })
    nodes.push(other)
    const left = onceRealm(a, 'member:left', d => d.peer.equals(c.peerId))
    await a.dial(other.getMultiaddrs())
    expect(await left).to.have.property('reason', 'auth-failed')
    expect(a.services.realm.isMember(c.peerId)).to.be.false()
    expect((await a.peerStore.get(c.peerId)).tags.has('realm-member')).to.be.false()
    // a dialled it itself and it speaks no realm protocol of a's: kept as a plain peer, not denied
    expect(a.services.realm.stats().authFailures.unsupported).to.equal(1)
    expect(a.services.realm.stats().connectionsRejected['auth-failed']).to.equal(0)
  })
})
