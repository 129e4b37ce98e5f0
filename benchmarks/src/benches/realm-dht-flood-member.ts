/**
 * The member of `realm-dht-flood`, in a fresh Node process for each run (`--expose-gc`), so the
 * heap it reports holds this member only: no outsider, no earlier run's node still waiting on a
 * libp2p timer. Driven over the IPC channel by the benchmark, one request and one reply at a
 * time: `start` (a `StartRequest`: start the member, let it settle, reply `Started` with its
 * first reading), `measure` (a `MeasureRequest`: once every connection closed, reply `Measured`
 * with the second reading, and a third `settle` ms later when `settle` > 0), `exit`.
 */

import { getHeapSpaceStatistics } from 'node:v8'
import { deriveKeys, DHT_NAMESPACE, membersOnly, realm, realmDhtProtocol, realmDhtSelector, realmDhtValidator } from '@holdfast/realm'
import { onceEvent } from '@holdfast/test-utils'
import { gossipsub } from '@libp2p/gossipsub'
import { kadDHT, passthroughMapper, Record as KadRecord } from '@libp2p/kad-dht'
import { collectGarbage, settle } from '../harness.ts'
import { loopbackNode, serve } from '../setup.ts'
import type { Realm, RealmStats } from '@holdfast/realm'
import type { Libp2p } from '@libp2p/interface'

export type Gate = 'members-only' | 'members-only-exclusive' | 'plain-kad-dht'

export interface Memory {
  heapUsed: number
  arrayBuffers: number
  /** bytes used in each V8 heap space (old, code, trusted...), the parts of heapUsed */
  spaces: Record<string, number>
}

export interface StartRequest {
  type: 'start'
  gate: Gate
  /** the realm's PSK, hex */
  psk: string
  authTimeout: number
  /** ms between the start and the first reading */
  settleAfterStart: number
}

export interface Started {
  type: 'started'
  peer: string
  addrs: string[]
  protocol: string
  before: Memory
}

export interface MeasureRequest {
  type: 'measure'
  /** ms to wait for a second reading (0: none) */
  settle: number
}

export interface Measured {
  type: 'measured'
  after: Memory
  settled?: Memory
  /** ms from the request until the member held no connection */
  drainedMs: number
  stored: { others: number, own: number }
  stats: RealmStats
}

/** ms the member may take to see every outsider's connection close */
const DRAIN_BOUND = 5_000

type MemberNode = Libp2p<{ realm: Realm, dht: unknown }>

let node: MemberNode | undefined

/** full GCs with timers and I/O in between (finalizers and weak references are cleared in later passes), then the heap and ArrayBuffer memory */
async function memory (): Promise<Memory> {
  for (let i = 0; i < 4; i++) {
    await new Promise(resolve => setTimeout(resolve, 10))
    await settle()
    collectGarbage()
  }
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map(s => [s.space_name.replace(/_space$/, ''), s.space_used_size]))
  return { heapUsed, arrayBuffers, spaces }
}

async function start (request: StartRequest): Promise<Started> {
  const dht = kadDHT({
    protocol: realmDhtProtocol(deriveKeys(request.psk).realmId),
    clientMode: false,
    peerInfoMapper: passthroughMapper,
    allowQueryWithZeroPeers: true,
    validators: { [DHT_NAMESPACE]: realmDhtValidator },
    selectors: { [DHT_NAMESPACE]: realmDhtSelector }
  }) as any
  node = await loopbackNode({
    pubsub: gossipsub(),
    realm: realm({ psk: request.psk, exclusive: request.gate === 'members-only-exclusive', authTimeout: request.authTimeout }),
    dht: request.gate === 'plain-kad-dht' ? dht : membersOnly(dht)
  }) as unknown as MemberNode
  await new Promise(resolve => setTimeout(resolve, request.settleAfterStart))
  return { type: 'started', peer: node.peerId.toString(), addrs: node.getMultiaddrs().map(ma => ma.toString()), protocol: realmDhtProtocol(node.services.realm.id), before: await memory() }
}

/** the realm DHT records in the member's datastore: from others, and its own */
async function storedRecords (member: MemberNode): Promise<{ others: number, own: number }> {
  const own = `/${member.peerId.toString()}`
  let others = 0
  let mine = 0
  for await (const { value } of (member as any).components.datastore.query({ prefix: '/dht/record' })) {
    if (new TextDecoder().decode(KadRecord.deserialize(value).key).endsWith(own)) {
      mine++
    } else {
      others++
    }
  }
  return { others, own: mine }
}

async function measure (request: MeasureRequest): Promise<Measured> {
  const member = node
  if (member == null) {
    throw new Error('not started')
  }
  const asked = performance.now()
  try {
    while (member.getConnections().length > 0) {
      await onceEvent(member, 'connection:close', { timeout: Math.max(0, DRAIN_BOUND - (performance.now() - asked)) })
    }
  } catch {
    // a connection still open past the bound: drainedMs says so, the reading goes ahead
  }
  const drainedMs = performance.now() - asked
  const after = await memory()
  let settled: Memory | undefined
  if (request.settle > 0) {
    await new Promise(resolve => setTimeout(resolve, request.settle))
    settled = await memory()
  }
  return { type: 'measured', after, settled, drainedMs, stored: await storedRecords(member), stats: member.services.realm.stats() }
}

serve({ start, measure }, async () => node?.stop())
