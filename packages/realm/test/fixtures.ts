import { connect, createNode, onceEvent } from '@holdfast/test-utils'
import { gossipsub } from '@libp2p/gossipsub'
import { realm } from '../src/index.ts'
import type { Realm, RealmEvents, RealmInit } from '../src/index.ts'
import type { NodeOptions } from '@holdfast/test-utils'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'

export type RealmNode = Libp2p<{ identify: unknown, ping: unknown, pubsub: GossipSub, realm: Realm }>

export const PSK = new Uint8Array(32).fill(7)
export const OTHER_PSK = new Uint8Array(32).fill(9)

export async function createMember (init: Partial<RealmInit> = {}, opts: NodeOptions<any> = {}): Promise<RealmNode> {
  return createNode({
    ...opts,
    services: {
      pubsub: gossipsub({ heartbeatInterval: 100 }),
      realm: realm({ psk: PSK, ...init }),
      ...opts.services
    }
  }) as unknown as Promise<RealmNode>
}

/** resolves with the first realm event of `type` whose detail passes `filter` */
export async function onceRealm<K extends keyof RealmEvents> (node: RealmNode, type: K, filter: (detail: RealmEvents[K]['detail']) => boolean = () => true): Promise<RealmEvents[K]['detail']> {
  return onceEvent<RealmEvents[K]['detail']>(node.services.realm as unknown as EventTarget, type, filter)
}

export async function joined (node: RealmNode, peer: PeerId): Promise<void> {
  if (node.services.realm.isMember(peer)) {
    return
  }
  await onceRealm(node, 'member:joined', d => d.peer.equals(peer))
}

/** resolves once `node`'s gossipsub knows `peer` subscribes to `topic` */
export async function subscribed (node: RealmNode, peer: PeerId, topic: string): Promise<void> {
  const has = (): boolean => node.services.pubsub.getSubscribers(topic).some(p => p.equals(peer))
  if (has()) {
    return
  }
  await onceEvent(node.services.pubsub as unknown as EventTarget, 'subscription-change', () => has())
}

export function topicOf (node: RealmNode): string {
  return `/holdfast/realm/${node.services.realm.id}/members/1.0.0`
}

export interface Watched {
  connection: Connection
  /** ms from this end's `connection:open` to its `connection:close` */
  held: Promise<number>
}

/** the next connection `node` opens to `peer` (and for which `filter` holds), timed from its `connection:open` to its `connection:close` */
export async function watchNext (node: Libp2p<any>, peer: PeerId, filter: (c: Connection) => boolean = () => true): Promise<Watched> {
  return new Promise(resolve => {
    const onOpen = ({ detail: connection }: CustomEvent<Connection>): void => {
      if (!connection.remotePeer.equals(peer) || !filter(connection)) {
        return
      }
      node.removeEventListener('connection:open', onOpen)
      const opened = performance.now()
      const held = new Promise<number>(resolve => {
        const onClose = ({ detail }: CustomEvent<Connection>): void => {
          if (detail.id === connection.id) {
            node.removeEventListener('connection:close', onClose)
            resolve(performance.now() - opened)
          }
        }
        node.addEventListener('connection:close', onClose)
      })
      resolve({ connection, held })
    }
    node.addEventListener('connection:open', onOpen)
  })
}

/** `a` and `c` meet only through `hub`: once both are connected to it and on the topic, `a` learns `c` from `c`'s announcement */
export async function learnThroughHub (a: RealmNode, hub: RealmNode, c: RealmNode): Promise<void> {
  await connect(a, hub)
  await connect(c, hub)
  await Promise.all([subscribed(hub, c.peerId, topicOf(c)), subscribed(a, hub.peerId, topicOf(a))])
  const learned = joined(a, c.peerId)
  await c.services.realm.announce()
  await learned
}

/** resolves once the stream has closed (at once when it already has) */
export async function ended (stream: Stream): Promise<void> {
  if (stream.status === 'open' || stream.status === 'closing') {
    await new Promise(resolve => { stream.addEventListener('close', resolve, { once: true }) })
  }
}
