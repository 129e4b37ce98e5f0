/**
 * The realm's resources as an outsider sees them, proved with real nodes: the realm DHT (behind
 * `membersOnly`) and the member list. An outsider is a plain libp2p node (no realm service, no
 * PSK) on 127.0.0.1.
 */

import { connect, createNode, onceEvent, stopAndExpectNoLeaks } from '@holdfast/test-utils'
import { putValue } from '@holdfast/test-utils/infrastructure'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { expect } from 'aegir/chai'
import { createDhtRecord } from '../src/dht.ts'
import { deriveKeys, dhtKey, membersOnly, realmDhtValidator } from '../src/index.ts'
import { createMember, ended, joined, onceRealm, PSK, subscribed, topicOf } from './fixtures.ts'
import { KAD_PROTOCOL, realmKad, storesRecord } from './kad-wire.ts'
import type { RealmNode } from './fixtures.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { KadDHT, QueryEvent } from '@libp2p/kad-dht'

/** ms; small, so each verdict takes half a second */
const AUTH_TIMEOUT = 500
/** ms an outsider may outlast `authTimeout` */
const MARGIN = 1_000
const REALM_ID = deriveKeys(PSK).realmId

function log (line: string): void {
  // eslint-disable-next-line no-console
  console.info(`      [boundary] ${line}`)
}

/** kad-dht's routing table, which its public types leave out */
interface RoutingTable extends EventTarget {
  find(peer: PeerId): Promise<unknown>
}

type RealmKad = KadDHT & { routingTable: RoutingTable }
type DhtNode = RealmNode & Libp2p<{ dht: RealmKad }>

async function inRoutingTable (node: Libp2p<{ dht: RealmKad }>, peer: PeerId): Promise<void> {
  const table = node.services.dht.routingTable
  if ((await table.find(peer)) != null) {
    return
  }
  await new Promise<void>(resolve => {
    const listener = (event: Event): void => {
      if ((event as CustomEvent<PeerId>).detail.equals(peer)) {
        table.removeEventListener('peer:add', listener)
        resolve()
      }
    }
    table.addEventListener('peer:add', listener)
  })
}

async function drain (events: AsyncIterable<QueryEvent>): Promise<QueryEvent[]> {
  const out: QueryEvent[] = []
  try {
    for await (const event of events) {
      out.push(event)
    }
  } catch {
    // a refused query ends in an error: what was yielded before is the answer
  }
  return out
}

/** the peer IDs a query's events reveal: final peers, and the closer peers of each response */
function revealed (events: QueryEvent[]): string[] {
  return events.flatMap(e => {
    if (e.name === 'FINAL_PEER') {
      return [e.peer.id.toString()]
    }
    if (e.name === 'PEER_RESPONSE') {
      return [e.from.toString(), ...e.closer.map(p => p.id.toString())]
    }
    return []
  })
}

// ---- the member list ----

type PubsubNode = Libp2p<{ pubsub: GossipSub }>

async function createListeningOutsider (topic: string): Promise<{ outsider: PubsubNode, received: Array<{ from: string, data: Uint8Array }> }> {
  const outsider = await createNode({ services: { pubsub: gossipsub({ heartbeatInterval: 100 }) } }) as unknown as PubsubNode
  const received: Array<{ from: string, data: Uint8Array }> = []
  outsider.services.pubsub.addEventListener('message', ({ detail }) => {
    if (detail.topic === topic && detail.type === 'signed') {
      received.push({ from: detail.from.toString(), data: detail.data })
    }
  })
  outsider.services.pubsub.subscribe(topic)
  return { outsider, received }
}

function includesBytes (haystack: Uint8Array, needle: Uint8Array): boolean {
  for (let i = 0; i + needle.length <= haystack.length; i++) {
    if (needle.every((byte, j) => haystack[i + j] === byte)) {
      return true
    }
  }
  return false
}

/** no address of any member, in binary or text form, is in the payload */
function expectSealed (data: Uint8Array, members: Array<Libp2p<any>>): void {
  const text = new TextDecoder().decode(data)
  for (const member of members) {
    for (const addr of member.getMultiaddrs()) {
      const bare = addr.decapsulateCode(421)
      expect(includesBytes(data, bare.bytes), `${bare.toString()} in binary`).to.be.false()
      expect(text, 'an address in text').to.not.include(bare.toString())
    }
  }
}

describe('the realm\'s resources, as an outsider sees them', () => {
  /** every node of the test, stopped and checked for leaks after it */
  const nodes: Array<Libp2p<any>> = []

  afterEach(async () => {
    await stopAndExpectNoLeaks(nodes.splice(0), 'realm')
  })

  it('an outsider cannot use the realm DHT: its PUT_VALUE is refused, its queries learn no member; a member\'s same PUT is stored', async () => {
    const dht = { services: { dht: membersOnly(realmKad()) } }
    // a keeps the outsider's connection (not exclusive), so only membersOnly stands between it and the DHT
    const a = await createMember({ authTimeout: AUTH_TIMEOUT, exclusive: false }, dht) as DhtNode
    const b = await createMember({ authTimeout: AUTH_TIMEOUT }, dht) as DhtNode
    const outsiderKey: PrivateKey = await generateKeyPair('Ed25519')
    const outsider = await createNode({ config: { privateKey: outsiderKey }, services: { dht: realmKad() } }) as unknown as Libp2p<{ dht: RealmKad }>
    nodes.push(a, b, outsider)
    const memberBToA = await connect(b, a)
    await Promise.all([joined(a, b.peerId), joined(b, a.peerId)])
    await Promise.all([inRoutingTable(a, b.peerId), inRoutingTable(b, a.peerId)])
    const toA = await connect(outsider, a)
    await inRoutingTable(outsider, a.peerId)

    // a validly signed realm record for the outsider's own peer ID (it cannot seal; the DHT cannot tell)
    const key = dhtKey(REALM_ID, outsider.peerId)
    const value = await createDhtRecord(REALM_ID, 1n, new Uint8Array(64).fill(1), outsiderKey)
    await realmDhtValidator(key, value)

    let denied = a.services.realm.stats().accessDenied
    await expect(putValue(toA, KAD_PROTOCOL, key, value, AUTH_TIMEOUT + MARGIN), 'PUT_VALUE from the outsider').to.eventually.be.rejected()
    expect(a.services.realm.stats().accessDenied).to.be.above(denied)
    expect(await storesRecord(a, key)).to.be.false()
    // the high-level put gets no further: it learns no peer to put to
    await drain(outsider.services.dht.put(key, value))
    expect(await storesRecord(a, key)).to.be.false()
    expect(await drain(b.services.dht.get(key)), 'a GET by another member finds nothing').to.satisfy((events: QueryEvent[]) => events.every(e => e.name !== 'VALUE'))

    // closest peers, asked of a directly: no member is revealed
    denied = a.services.realm.stats().accessDenied
    const asked = await drain(outsider.services.dht.getClosestPeers(key))
    const members = [a.peerId.toString(), b.peerId.toString()]
    expect(revealed(asked).filter(id => members.includes(id)), 'members revealed to the outsider').to.be.empty()
    expect(a.services.realm.stats().accessDenied).to.be.above(denied)
    expect(await a.services.dht.routingTable.find(outsider.peerId), 'the outsider is not in a\'s routing table').to.be.undefined()

    // positive control: the same bytes from a member are stored, found by another member, and a member learns of a
    expect((await putValue(memberBToA, KAD_PROTOCOL, key, value, AUTH_TIMEOUT + MARGIN)).byteLength, 'a replies to the member').to.be.above(0)
    expect(await storesRecord(a, key)).to.be.true()
    const found = (await drain(b.services.dht.get(key))).find(e => e.name === 'VALUE')
    expect(found?.name === 'VALUE' ? found.value : undefined).to.deep.equal(value)
    expect(revealed(await drain(b.services.dht.getClosestPeers(key)))).to.include(a.peerId.toString())
  })

  describe('the member list', () => {
    /** two members that met, and a plain outsider subscribed to their topic, not connected yet */
    async function membersAndListener (exclusive: boolean): Promise<{ a: RealmNode, b: RealmNode, topic: string } & Awaited<ReturnType<typeof createListeningOutsider>>> {
      const [a, b] = await Promise.all([createMember({ authTimeout: AUTH_TIMEOUT, exclusive }), createMember({ authTimeout: AUTH_TIMEOUT, exclusive })])
      nodes.push(a, b)
      await connect(a, b)
      await Promise.all([joined(a, b.peerId), joined(b, a.peerId)])
      const topic = topicOf(a)
      const listener = await createListeningOutsider(topic)
      nodes.push(listener.outsider)
      return { a, b, topic, ...listener }
    }

    it('exclusive: a subscribed outsider is cut at authTimeout; it got only sealed announcements, and gets none after', async () => {
      const { a, b, topic, outsider, received } = await membersAndListener(true)

      const rejected = onceRealm(a, 'realm:rejected', d => d.peer.equals(outsider.peerId))
      const gone = onceEvent(a, 'peer:disconnect', p => p.equals(outsider.peerId))
      await outsider.dial(a.getMultiaddrs())
      expect(await rejected).to.have.property('reason', 'auth-timeout')
      await gone
      const before = received.length
      log(`member list, exclusive: the outsider caught ${before} sealed announcement(s) from ${new Set(received.map(r => r.from)).size} member(s) before it was cut`)
      for (const { data } of received) {
        expectSealed(data, [a, b])
      }

      // the members go on announcing; b receiving one is the proof the outsider would have too
      const heard = new Promise<void>(resolve => {
        b.services.pubsub.addEventListener('message', ({ detail }) => { if (detail.topic === topic) { resolve() } })
      })
      await a.services.realm.announce()
      await heard
      expect(received).to.have.lengthOf(before)
      expect(a.services.realm.members().map(m => m.peerId.toString())).to.deep.equal([b.peerId.toString()])
    })

    it('not exclusive: a plain outsider gets sealed announcements of every member, forwarded ones too, with no address in them', async () => {
      const { a, b, topic, outsider, received } = await membersAndListener(false)
      await connect(outsider, a)
      await subscribed(a, outsider.peerId, topic)

      const fromB = new Promise<void>(resolve => {
        outsider.services.pubsub.addEventListener('message', ({ detail }) => { if (detail.topic === topic && detail.type === 'signed' && detail.from.equals(b.peerId)) { resolve() } })
      })
      await b.services.realm.announce()
      // b never met the outsider: a forwarded it
      await fromB
      expect(outsider.getConnections(b.peerId)).to.be.empty()
      for (const { data } of received) {
        expectSealed(data, [a, b])
      }
      expect(a.services.realm.members().map(m => m.peerId.toString())).to.deep.equal([b.peerId.toString()])
      expect(a.getConnections(outsider.peerId), 'not exclusive: it stays').to.not.be.empty()
    })

    it('with gossipsub wrapped in membersOnly, an outsider on a non-exclusive realm gets no announcement at all; members still converge', async () => {
      const opts = { services: { pubsub: membersOnly(gossipsub({ heartbeatInterval: 100 })) } }
      const [a, b] = await Promise.all([createMember({ authTimeout: AUTH_TIMEOUT, exclusive: false }, opts), createMember({ authTimeout: AUTH_TIMEOUT, exclusive: false }, opts)])
      nodes.push(a, b)
      await connect(a, b)
      await Promise.all([joined(a, b.peerId), joined(b, a.peerId)])
      const topic = topicOf(a)
      await subscribed(b, a.peerId, topic)
      const { outsider, received } = await createListeningOutsider(topic)
      nodes.push(outsider)
      const denied = a.services.realm.stats().accessDenied
      const toA = await connect(outsider, a)
      // a stream of our own on gossipsub's protocol ends when a's gate gives up on the outsider (authTimeout): its gossipsub streams got the same verdict
      await ended(await toA.newStream('/meshsub/1.1.0'))
      expect(a.services.realm.stats().accessDenied).to.be.above(denied)
      const heard = new Promise<void>(resolve => {
        b.services.pubsub.addEventListener('message', ({ detail }) => { if (detail.topic === topic) { resolve() } })
      })
      await a.services.realm.announce()
      await heard
      expect(received).to.be.empty()
      expect(a.services.pubsub.getSubscribers(topic).map(String)).to.not.include(outsider.peerId.toString())
      expect(a.getConnections(outsider.peerId), 'not exclusive: it stays').to.not.be.empty()
    })
  })
})
