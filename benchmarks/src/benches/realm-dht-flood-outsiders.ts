/**
 * The outsiders of `realm-dht-flood`, in their own Node process so their heap never counts as
 * the member's: plain libp2p nodes (no realm, no DHT service) that open the realm DHT's kad
 * protocol on the member and send one PUT_VALUE per stream, each a ~15 KiB realm record validly
 * signed by a throw-away identity. Driven over the IPC channel by the benchmark, one request
 * and one reply at a time: `prepare` (a `PrepareRequest`: build the PUT_VALUE messages once),
 * `flood` (a `FloodRequest`: fresh outsider nodes share the messages, each with `concurrency`
 * attempts in flight; reply `FloodReport` once every attempt ended and every outsider stopped),
 * `exit`.
 */

import { createDhtRecord, dhtKey } from '@holdfast/realm'
import { kadPutValue } from '@holdfast/test-utils/infrastructure'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { loopbackNode, serve } from '../setup.ts'
import type { Libp2p } from '@libp2p/interface'

export interface PrepareRequest {
  type: 'prepare'
  realmId: string
  count: number
  /** bytes of the `sealed` field of each record (the record is this plus ~90 bytes) */
  sealedBytes: number
}

export interface FloodRequest {
  type: 'flood'
  /** the member's peer ID and addresses */
  peer: string
  addrs: string[]
  protocol: string
  outsiders: number
  concurrency: number
  /** ms one attempt may take */
  attemptTimeout: number
  /** ms the whole flood may take: attempts not started by then are not made */
  bound: number
}

export interface FloodReport {
  type: 'flooded'
  attempts: number
  /** PUT_VALUE answered by the member (kad-dht echoes a stored record) */
  answered: number
  /** attempts that failed, by error name (stream reset by the gate, dial refused by the gater...) */
  failures: Record<string, number>
  /** attempts never made because the bound ran out */
  skipped: number
  ms: number
  /** bytes of one PUT_VALUE message */
  messageBytes: number
}

let messages: Uint8Array[] = []

async function prepare (request: PrepareRequest): Promise<{ type: 'prepared', count: number }> {
  if (messages.length === request.count) {
    return { type: 'prepared', count: messages.length }
  }
  const sealed = crypto.getRandomValues(new Uint8Array(request.sealedBytes))
  messages = []
  for (let i = 0; i < request.count; i++) {
    // a fresh throw-away identity per record, signed as realmDhtValidator checks it
    const privateKey = await generateKeyPair('Ed25519')
    const value = await createDhtRecord(request.realmId, 1n, sealed, privateKey)
    messages.push(kadPutValue(dhtKey(request.realmId, peerIdFromPrivateKey(privateKey)), value))
  }
  return { type: 'prepared', count: messages.length }
}

async function flood (request: FloodRequest): Promise<FloodReport> {
  const addrs = request.addrs.map(a => multiaddr(a))
  const member = peerIdFromString(request.peer)
  // dials only: no listener
  const nodes: Libp2p[] = await Promise.all(Array.from({ length: request.outsiders }, async () => loopbackNode(undefined, { addresses: { listen: [] } })))
  const started = performance.now()
  const deadline = started + request.bound
  const failures: Record<string, number> = {}
  let next = 0
  let answered = 0
  let skipped = 0
  const attempt = async (node: Libp2p, message: Uint8Array): Promise<void> => {
    const signal = AbortSignal.timeout(request.attemptTimeout)
    try {
      const stream = await node.dialProtocol(addrs, request.protocol, { signal })
      const lp = lpStream(stream)
      await lp.write(message, { signal })
      await lp.read({ signal })
      answered++
      await stream.close({ signal }).catch(() => {})
    } catch (err: any) {
      const name = String(err?.name ?? 'Error')
      failures[name] = (failures[name] ?? 0) + 1
      if (name === 'ConnectionClosedError') {
        // the member closed the connection and libp2p here still lists it as open for a moment
        // (its muxer is closed): drop it, so the next attempt redials instead of failing here
        await node.hangUp(member, { signal: AbortSignal.timeout(request.attemptTimeout) }).catch(() => {})
      }
    }
  }
  // each outsider runs `concurrency` workers that take the next message until none is left
  await Promise.all(nodes.flatMap(node => Array.from({ length: request.concurrency }, async () => {
    while (next < messages.length) {
      const message = messages[next++]
      if (performance.now() > deadline) {
        skipped++
        continue
      }
      await attempt(node, message)
    }
  })))
  const ms = performance.now() - started
  await Promise.all(nodes.map(async node => node.stop()))
  return { type: 'flooded', attempts: messages.length - skipped, answered, failures, skipped, ms, messageBytes: messages[0]?.byteLength ?? 0 }
}

serve({ prepare, flood })
