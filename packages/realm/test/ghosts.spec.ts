/**
 * Ghost members: a departed member's captured announcement, sent again, must not bring it back,
 * and a captured `leaving` must not evict a member that came back.
 *
 * The replays go the way an attacker's would. gossipsub forwards a message exactly as its author
 * signed it, so any peer on the topic that kept a copy can send it again (`forward`, here through
 * a member, b); its receiver's duplicate cache drops that copy only until `seenTTL` has passed,
 * which is short here. The author's own pubsub can also publish the captured bytes again: that
 * is a new gossipsub message (new seqno), which no duplicate cache ever catches.
 */

import { watermarkConnectionManager } from '@holdfast/connection-manager'
import { TAGS } from '@holdfast/interface'
import { connect, createFakeClock, disconnect, stopAndExpectNoLeaks } from '@holdfast/test-utils'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub, TopicValidatorResult } from '@libp2p/gossipsub'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { MAX_SEQ_ENTRIES } from '../src/constants.ts'
import { deriveKeys, open } from '../src/keys.ts'
import { MemberList } from '../src/member-list.ts'
import { Announcement, Sealed } from '../src/pb/realm.ts'
import { seqRetention } from '../src/policy.ts'
import { createMember, joined, onceRealm, PSK, subscribed, topicOf } from './fixtures.ts'
import type { RealmNode } from './fixtures.ts'
import type { RejectReason } from '../src/index.ts'
import type { Clock, WatermarkConnectionManager } from '@holdfast/interface'
import type { FakeClock } from '@holdfast/test-utils'
import type { GossipsubMessage, SignedMessage } from '@libp2p/gossipsub'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'

type GhostNode = RealmNode & Libp2p<{ connManager?: WatermarkConnectionManager }>

const ANNOUNCE_INTERVAL = 1_000
const MEMBER_TTL = 3_000
const SKEW = 1_500
/** a member's seq is kept this long after its last update (6 s with the numbers above) */
const RETENTION = seqRetention(MEMBER_TTL, SKEW)
/** the member list's sweep period, a quarter of the TTL */
const SWEEP_EVERY = MEMBER_TTL / 4
/** real ms gossipsub keeps a message ID in its duplicate cache; above the 3 heartbeats (300 ms) a message stays in gossip, so IHAVE/IWANT never re-deliver it */
const SEEN_TTL = 1_000
const KEYS = deriveKeys(PSK)

interface Captured {
  msgId: string
  msg: SignedMessage
  announcement: Announcement
}

async function member (clock: Clock, opts: { connManager?: boolean, privateKey?: PrivateKey } = {}): Promise<GhostNode> {
  return createMember({ clock, announceInterval: ANNOUNCE_INTERVAL, memberTtl: MEMBER_TTL, clockSkew: SKEW }, {
    services: {
      pubsub: gossipsub({ heartbeatInterval: 100, seenTTL: SEEN_TTL }),
      ...(opts.connManager === true ? { connManager: watermarkConnectionManager() } : {})
    },
    config: opts.privateKey == null ? {} : { privateKey: opts.privateKey }
  }) as Promise<GhostNode>
}

/**
 * Resolves once the node's own addresses are in its peer store: libp2p has sent its one
 * `self:peer:update` (debounced after listening), so the realm makes no announcement of its own
 * accord any more, only on the fake clock and when the test asks.
 */
async function settled (node: RealmNode): Promise<void> {
  let listener = (): void => {}
  const updated = new Promise<void>(resolve => { listener = () => { resolve() } })
  node.addEventListener('self:peer:update', listener)
  try {
    const self = await node.peerStore.get(node.peerId).catch(() => undefined)
    if ((self?.addresses.length ?? 0) === 0) {
      await updated
    }
  } finally {
    node.removeEventListener('self:peer:update', listener)
  }
}

function decode (data: Uint8Array): Announcement {
  const plaintext = open(KEYS, 'announcement', Sealed.decode(data))
  if (plaintext == null) {
    throw new Error('not a realm announcement')
  }
  return Announcement.decode(plaintext)
}

/** the next realm announcement of `from` that `node` accepts, as gossipsub delivered it */
async function nextFrom (node: RealmNode, from: PeerId, filter: (announcement: Announcement) => boolean = () => true): Promise<Captured> {
  const topic = topicOf(node)
  return new Promise(resolve => {
    const listener = ({ detail }: CustomEvent<GossipsubMessage>): void => {
      const msg = detail.msg
      if (msg.type !== 'signed' || msg.topic !== topic || !msg.from.equals(from)) {
        return
      }
      const announcement = decode(msg.data)
      if (filter(announcement)) {
        node.services.pubsub.removeEventListener('gossipsub:message', listener)
        resolve({ msgId: detail.msgId, msg, announcement })
      }
    }
    node.services.pubsub.addEventListener('gossipsub:message', listener)
  })
}

/** the message on the wire as its author signed it (the key is left out: an Ed25519 peer ID holds it) */
function rawOf (msg: SignedMessage): Record<string, unknown> {
  const seqno = new Uint8Array(8)
  new DataView(seqno.buffer).setBigUint64(0, msg.sequenceNumber, false)
  return { from: msg.from.toMultihash().bytes, data: msg.data, seqno, topic: msg.topic, signature: msg.signature }
}

/** `via` sends its copy of a captured message to `to` again, as gossipsub forwards messages */
function forward (via: RealmNode, to: RealmNode, captured: Captured): void {
  const sent: boolean = (via.services.pubsub as any).sendRpc(to.peerId.toString(), { subscriptions: [], messages: [rawOf(captured.msg)] })
  expect(sent, `${via.peerId} has a gossipsub stream to ${to.peerId}`).to.be.true()
}

/**
 * Resolves once `node`'s gossipsub no longer holds the message: in its duplicate cache
 * (`seen`, `seenTTL` after it arrived, at the next heartbeat), or in its message cache (`mcache`,
 * the full messages it answers IWANT with and gossips about, 5 heartbeats).
 */
async function forgotten (node: RealmNode, msgId: string, cache: 'seen' | 'mcache'): Promise<void> {
  const pubsub = node.services.pubsub as any
  const holds = (): boolean => cache === 'seen' ? pubsub.seenCache.has(msgId) : pubsub.mcache.msgs.has(msgId)
  for (let beats = 0; holds(); beats++) {
    if (beats > 100) {
      throw new Error(`gossipsub still holds ${msgId} in its ${cache} cache after 100 heartbeats`)
    }
    await new Promise(resolve => { pubsub.addEventListener('gossipsub:heartbeat', resolve, { once: true }) })
  }
}

type Verdict = RejectReason | 'joined' | 'updated' | 'left'

/** what `node` does next about `from`: rejects an announcement (the reason), or changes its membership */
async function nextVerdict (node: RealmNode, from: PeerId): Promise<Verdict> {
  const realm = node.services.realm
  return new Promise(resolve => {
    const listeners: Array<[string, (event: CustomEvent<any>) => void]> = [
      ['announcement:rejected', ({ detail }) => { if (detail.from.equals(from)) { done(detail.reason) } }],
      ['member:joined', ({ detail }) => { if (detail.peer.equals(from)) { done('joined') } }],
      ['member:updated', ({ detail }) => { if (detail.peer.equals(from)) { done('updated') } }],
      ['member:left', ({ detail }) => { if (detail.peer.equals(from)) { done('left') } }]
    ]
    const done = (verdict: Verdict): void => {
      for (const [type, listener] of listeners) {
        realm.removeEventListener(type as any, listener)
      }
      resolve(verdict)
    }
    for (const [type, listener] of listeners) {
      realm.addEventListener(type as any, listener)
    }
  })
}

async function tagged (node: RealmNode, peer: PeerId): Promise<boolean> {
  return await node.peerStore.has(peer) && (await node.peerStore.get(peer)).tags.has(TAGS.realmMember)
}

/**
 * b forwards `captured` to a: a refuses it for `reason`, counts it once, and the peer it speaks
 * for keeps the standing it had (a member, protected and tagged, or none of these)
 */
async function expectRefused (a: GhostNode, b: RealmNode, captured: Captured, peer: PeerId, reason: 'stale' | 'replay', standing: { member: boolean }): Promise<void> {
  const verdict = nextVerdict(a, peer)
  forward(b, a, captured)
  expect(await verdict).to.equal(reason)
  expect(a.services.realm.isMember(peer)).to.equal(standing.member)
  expect(a.services.connManager?.isProtected(peer, TAGS.realmMember)).to.equal(standing.member)
  expect(await tagged(a, peer)).to.equal(standing.member)
  expect(a.services.realm.stats().rejected[reason]).to.equal(1)
}

/** the realm's own topic validator, called as gossipsub calls it */
async function validate (node: RealmNode, propagationSource: PeerId, msg: SignedMessage): Promise<TopicValidatorResult> {
  return (node.services.realm as any).memberTopic.validate(propagationSource, msg)
}

describe('realm ghosts: replayed announcements of departed members', () => {
  let nodes: GhostNode[] = []

  afterEach(async () => {
    await stopAndExpectNoLeaks(nodes, 'realm')
    nodes = []
  })

  it('after leave(): the departed member\'s captured announcement, published again or forwarded once the duplicate cache forgot it, is rejected as a replay', async () => {
    const clock = createFakeClock()
    const [a, b, c] = nodes = await Promise.all([member(clock, { connManager: true }), member(clock), member(clock)])
    await Promise.all(nodes.map(settled))
    const topic = topicOf(a)
    await Promise.all([connect(a, c), connect(a, b), connect(b, c)])
    await Promise.all([joined(a, c.peerId), joined(a, b.peerId), joined(b, c.peerId)])
    await Promise.all([subscribed(a, c.peerId, topic), subscribed(a, b.peerId, topic), subscribed(b, c.peerId, topic), subscribed(c, a.peerId, topic), subscribed(c, b.peerId, topic)])

    // c announces; a and b (an observer keeping a copy) both receive it
    const [atA, atB] = [nextFrom(a, c.peerId), nextFrom(b, c.peerId)]
    await c.services.realm.announce()
    const [seenByA, captured] = await Promise.all([atA, atB])
    expect(seenByA.msgId).to.equal(captured.msgId)
    expect(captured.announcement.leaving).to.be.false()

    const left = onceRealm(a, 'member:left', d => d.peer.equals(c.peerId))
    await c.services.realm.leave()
    expect(await left).to.have.property('reason', 'left')
    expect(a.services.connManager?.isProtected(c.peerId, TAGS.realmMember)).to.be.false()
    expect(a.services.realm.internalSizes().seqs, 'c\'s seq outlives its leave (b\'s is the other)').to.equal(2)

    // 1. c's still running pubsub publishes the captured bytes: a new gossipsub message, which no duplicate cache knows
    let verdict = nextVerdict(a, c.peerId)
    await c.services.pubsub.publish(topic, captured.msg.data)
    expect(await verdict).to.equal('replay')

    // 2. b forwards its copy of the original message. Within seenTTL gossipsub itself would drop it
    //    as a duplicate; once a's duplicate cache has forgotten it, only the realm stands in the way
    expect((a.services.pubsub as any).seenCache.has(captured.msgId), 'a\'s duplicate cache still holds the message').to.be.true()
    await forgotten(a, captured.msgId, 'seen')
    verdict = nextVerdict(a, c.peerId)
    forward(b, a, captured)
    expect(await verdict).to.equal('replay')

    expect(a.services.realm.isMember(c.peerId)).to.be.false()
    expect(a.services.realm.members().map(m => m.peerId.toString())).to.deep.equal([b.peerId.toString()])
    expect(a.services.connManager?.isProtected(c.peerId, TAGS.realmMember)).to.be.false()
    expect(await tagged(a, c.peerId)).to.be.false()
    expect(a.services.realm.stats().rejected.replay).to.equal(2)
  })

  it('after expiry: the last announcement of a member that stopped is rejected as a replay while its seq is kept, then as stale; there is no instant in between', async () => {
    const clock = createFakeClock()
    const start = clock.now()
    // c's clock runs exactly the skew ahead: the latest issue time still accepted, so its
    // announcements stay acceptable longest, up to `RETENTION` after a receives them
    const cClock = createFakeClock(start + SKEW)
    const [a, b, c] = nodes = await Promise.all([member(clock, { connManager: true }), member(clock), member(cClock)])
    await Promise.all(nodes.map(settled))
    const topic = topicOf(a)
    // a and c meet only through b
    await Promise.all([connect(a, b), connect(c, b)])
    await Promise.all([joined(a, b.peerId), joined(b, c.peerId)])
    await Promise.all([subscribed(a, b.peerId, topic), subscribed(b, a.peerId, topic), subscribed(b, c.peerId, topic), subscribed(c, b.peerId, topic)])

    const learned = joined(a, c.peerId)
    const atA = nextFrom(a, c.peerId)
    const atB = nextFrom(b, c.peerId)
    await c.services.realm.announce()
    await learned
    const [seenByA, last] = await Promise.all([atA, atB])
    expect(seenByA.msgId).to.equal(last.msgId)
    expect(Number(last.announcement.issuedAt)).to.equal(start + SKEW)
    expect(a.services.realm.internalSizes().seqs, 'the seqs of b and c').to.equal(2)

    // c stops without leaving; a expires it after the TTL
    await c.stop()
    const left = onceRealm(a, 'member:left', d => d.peer.equals(c.peerId))
    await clock.tickAsync(MEMBER_TTL)
    expect(await left).to.have.property('reason', 'expired')
    expect(a.services.connManager?.isProtected(c.peerId, TAGS.realmMember)).to.be.false()

    // b forwards its copy once a's duplicate cache has forgotten it: still young enough to pass the age check, and refused by the seq
    expect(clock.now() - Number(last.announcement.issuedAt)).to.be.at.most(MEMBER_TTL + SKEW)
    await forgotten(a, last.msgId, 'seen')
    let verdict = nextVerdict(a, c.peerId)
    forward(b, a, last)
    expect(await verdict).to.equal('replay')
    expect(a.services.realm.isMember(c.peerId)).to.be.false()

    // sweep by sweep past the retention: refused as a replay while a keeps c's seq, as stale once it forgot it
    const reasons: string[] = []
    while (clock.now() < start + RETENTION + SWEEP_EVERY) {
      await clock.tickAsync(SWEEP_EVERY)
      const remembers = a.services.realm.internalSizes().seqs === 2
      const rejected = nextVerdict(a, c.peerId)
      const result = await validate(a, b.peerId, last.msg)
      const reason = await rejected
      expect(result, `at +${clock.now() - start} ms`).to.equal(TopicValidatorResult.Reject)
      expect(reason, `at +${clock.now() - start} ms`).to.equal(remembers ? 'replay' : 'stale')
      reasons.push(reason)
      expect(a.services.realm.isMember(c.peerId)).to.be.false()
    }
    expect(reasons.at(0)).to.equal('replay')
    expect(reasons.at(-1)).to.equal('stale')
    expect(a.services.realm.internalSizes().seqs, 'c\'s seq is forgotten: only b\'s is left').to.equal(1)

    // and the forwarded copy, once more, is refused as stale
    await forgotten(a, last.msgId, 'seen')
    verdict = nextVerdict(a, c.peerId)
    forward(b, a, last)
    expect(await verdict).to.equal('stale')

    expect(a.services.realm.isMember(c.peerId)).to.be.false()
    expect(a.services.connManager?.isProtected(c.peerId, TAGS.realmMember)).to.be.false()
    expect(await tagged(a, c.peerId)).to.be.false()
    const stats = a.services.realm.stats()
    expect(stats.rejected.replay).to.equal(1 + reasons.filter(r => r === 'replay').length)
    expect(stats.rejected.stale).to.equal(1 + reasons.filter(r => r === 'stale').length)
  })

  it('a member that joined later rejects a captured announcement older than memberTtl + clockSkew as stale', async () => {
    const clock = createFakeClock()
    const [b, c] = nodes = await Promise.all([member(clock), member(clock)])
    await Promise.all(nodes.map(settled))
    const topic = topicOf(b)
    await connect(c, b)
    await joined(b, c.peerId)
    await Promise.all([subscribed(b, c.peerId, topic), subscribed(c, b.peerId, topic)])
    const atB = nextFrom(b, c.peerId)
    await c.services.realm.announce()
    const captured = await atB
    await c.stop()
    await clock.tickAsync(MEMBER_TTL + SKEW + 1)
    // b no longer offers the message in gossip, so a hears of it only from the replay
    await forgotten(b, captured.msgId, 'mcache')

    const a = await member(clock, { connManager: true })
    nodes.push(a)
    await settled(a)
    await connect(a, b)
    await joined(a, b.peerId)
    await Promise.all([subscribed(a, b.peerId, topic), subscribed(b, a.peerId, topic)])

    await expectRefused(a, b, captured, c.peerId, 'stale', { member: false })
    expect(a.services.realm.internalSizes().seqs, 'a refused announcement leaves no seq behind').to.equal(1)
  })

  it('a captured leaving replayed after the member came back and re-authenticated is rejected as a replay (the floor proved in auth): it stays a protected member', async () => {
    const clock = createFakeClock()
    const key = await generateKeyPair('Ed25519')
    const [a, b, c1] = nodes = await Promise.all([member(clock, { connManager: true }), member(clock), member(clock, { privateKey: key })])
    await Promise.all(nodes.map(settled))
    const topic = topicOf(a)

    // a knows c, authenticated and from an announcement, then loses the connection: c stays a member until its TTL
    await connect(a, c1)
    await joined(a, c1.peerId)
    await Promise.all([subscribed(a, c1.peerId, topic), subscribed(c1, a.peerId, topic)])
    const updated = onceRealm(a, 'member:updated', d => d.peer.equals(c1.peerId))
    await c1.services.realm.announce()
    await updated
    await disconnect(a, c1)
    expect(a.services.realm.isMember(c1.peerId)).to.be.true()

    // c leaves while a can't hear it; b keeps a copy of the leaving
    await connect(b, c1)
    await joined(b, c1.peerId)
    await Promise.all([subscribed(b, c1.peerId, topic), subscribed(c1, b.peerId, topic)])
    const atB = nextFrom(b, c1.peerId, announcement => announcement.leaving)
    await c1.services.realm.leave()
    const leaving = await atB
    await c1.stop()
    await forgotten(b, leaving.msgId, 'mcache')

    // c comes back a while later: same key, a fresh node, and authenticates with a again
    await clock.tickAsync(ANNOUNCE_INTERVAL)
    const c2 = await member(clock, { privateKey: key })
    nodes.push(c2)
    expect(c2.peerId.equals(c1.peerId)).to.be.true()
    await settled(c2)
    await connect(c2, a)
    await a.services.realm.authenticate(a.getConnections(c2.peerId)[0])
    expect(a.services.realm.members().find(m => m.peerId.equals(c2.peerId))?.authenticated).to.be.true()
    // what makes the replay fail is the floor alone: the last seq a accepted from c is below the leaving's
    const entry = (a.services.realm as any).list.seqOf(c2.peerId)
    expect(entry.seq < leaving.announcement.seq, 'a never heard the leaving').to.be.true()
    expect(entry.floor > leaving.announcement.seq, 'c proved a newer seq in auth').to.be.true()

    await connect(b, a)
    await Promise.all([subscribed(a, b.peerId, topic), subscribed(b, a.peerId, topic)])
    await expectRefused(a, b, leaving, c2.peerId, 'replay', { member: true })
  })

  it('an announcement dated more than clockSkew ahead of the receiver\'s clock is rejected (as stale); exactly clockSkew ahead is accepted', async () => {
    const clock = createFakeClock()
    const [a, near, far] = nodes = await Promise.all([
      member(clock),
      member(createFakeClock(clock.now() + SKEW)),
      member(createFakeClock(clock.now() + SKEW + 1))
    ])
    await Promise.all(nodes.map(settled))
    const topic = topicOf(a)
    await Promise.all([connect(near, a), connect(far, a)])
    await Promise.all([joined(a, near.peerId), joined(a, far.peerId)])
    await Promise.all([subscribed(a, near.peerId, topic), subscribed(a, far.peerId, topic), subscribed(near, a.peerId, topic), subscribed(far, a.peerId, topic)])

    let verdict = nextVerdict(a, near.peerId)
    await near.services.realm.announce()
    expect(await verdict, 'exactly the skew ahead').to.equal('updated')

    verdict = nextVerdict(a, far.peerId)
    await far.services.realm.announce()
    expect(await verdict, '1 ms more').to.equal('future')
    // a member by its auth, but nothing of the announcement is taken
    expect(a.services.realm.members().find(m => m.peerId.equals(far.peerId))?.addrs).to.be.empty()
    expect(a.services.realm.members().find(m => m.peerId.equals(near.peerId))?.addrs).to.not.be.empty()
    expect(a.services.realm.stats().rejected.future).to.equal(1)
    expect(a.services.realm.stats().rejected.stale).to.equal(0)
  })
})

describe('realm ghosts: the member list\'s seq table', () => {
  const hooks = { joined () {}, updated () {}, left () {} }
  const announcement = (seq: bigint, leaving = false): { seq: bigint, leaving: boolean, natType: string, signedPeerRecord: Uint8Array } =>
    ({ seq, leaving, natType: 'unknown', signedPeerRecord: new Uint8Array() })

  let clock: FakeClock

  beforeEach(() => {
    clock = createFakeClock()
  })

  it('keeps a departed member\'s seq through the whole retention and forgets it right after', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const list = new MemberList(clock, RETENTION, hooks)
    list.announced(peer, announcement(1n), [], [])
    list.announced(peer, announcement(2n, true), [], [])
    expect(list.get(peer)).to.be.undefined()
    clock.tick(RETENTION)
    list.sweep(MEMBER_TTL)
    expect(list.seqOf(peer)?.seq, 'still kept at exactly the retention').to.equal(2n)
    clock.tick(1)
    list.sweep(MEMBER_TTL)
    expect(list.seqOf(peer)).to.be.undefined()
    expect(list.seqCount).to.equal(0)
  })

  it('never holds more than MAX_SEQ_ENTRIES seqs: the least recently updated goes first', async () => {
    const peers = await Promise.all(Array.from({ length: MAX_SEQ_ENTRIES + 1 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
    const list = new MemberList(clock, RETENTION, hooks)
    for (const peer of peers.slice(0, MAX_SEQ_ENTRIES)) {
      list.announced(peer, announcement(1n), [], [])
    }
    expect(list.seqCount).to.equal(MAX_SEQ_ENTRIES)
    // the first peer is heard from again: it is now the most recently updated
    list.announced(peers[0], announcement(2n), [], [])
    list.announced(peers[MAX_SEQ_ENTRIES], announcement(1n), [], [])
    expect(list.seqCount).to.equal(MAX_SEQ_ENTRIES)
    expect(list.seqOf(peers[0])?.seq).to.equal(2n)
    expect(list.seqOf(peers[1]), 'the least recently updated').to.be.undefined()
    expect(list.seqOf(peers[MAX_SEQ_ENTRIES])?.seq).to.equal(1n)
  })
})
