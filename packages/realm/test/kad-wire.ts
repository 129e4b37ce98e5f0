/**
 * kad-dht on the wire, for tests that play a peer the DHT must refuse: a PUT_VALUE encoded by
 * hand (kad-dht does not export its codec), and a look into a node's record store; and the
 * realm's kad-dht as `@holdfast/node` configures it.
 */

import { kadDHT, passthroughMapper, Record as DhtEnvelope } from '@libp2p/kad-dht'
import { lpStream } from '@libp2p/utils'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { deriveKeys, DHT_NAMESPACE, realmDhtSelector, realmDhtValidator } from '../src/index.ts'
import { PSK } from './fixtures.ts'
import type { Connection, Libp2p } from '@libp2p/interface'

function varint (n: number): number[] {
  const out: number[] = []
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return out
}

/** kad-dht's wire message `{ type: PUT_VALUE (0), key, record }`, encoded by hand: kad-dht does not export its codec */
export function putValueMessage (key: Uint8Array, value: Uint8Array): Uint8Array {
  const record = new DhtEnvelope(key, value, new Date()).serialize()
  const field = (no: number, bytes: Uint8Array): number[] => [...varint((no << 3) | 2), ...varint(bytes.length), ...bytes]
  return Uint8Array.from([0x08, 0x00, ...field(2, key), ...field(3, record)])
}

/** sends one PUT_VALUE on a fresh kad stream: resolves with the reply, rejects when the stream is refused */
export async function putValue (connection: Connection, protocol: string, key: Uint8Array, value: Uint8Array, timeout: number): Promise<Uint8Array> {
  const stream = await connection.newStream(protocol)
  const lp = lpStream(stream)
  await lp.write(putValueMessage(key, value))
  const reply = await lp.read({ signal: AbortSignal.timeout(timeout) })
  await stream.close()
  return reply.subarray()
}

/** whether `node` keeps a kad-dht record under `key` (its datastore key is `/dht/record/<base32 key>`) */
export async function storesRecord (node: Libp2p<any>, key: Uint8Array): Promise<boolean> {
  const wanted = `/dht/record/${uint8ArrayToString(key, 'base32')}`
  const { datastore } = (node as unknown as { components: { datastore: { query(q: { prefix: string }): AsyncIterable<{ key: { toString(): string } }> } } }).components
  for await (const { key: stored } of datastore.query({ prefix: '/dht/record' })) {
    if (stored.toString() === wanted) {
      return true
    }
  }
  return false
}

/** the realm DHT protocol of the fixtures' PSK */
export const KAD_PROTOCOL = `/holdfast/realm/${deriveKeys(PSK).realmId}/kad/1.0.0`

/** kad-dht as `@holdfast/node` configures it for the realm (its own protocol, realm validator and selector); typed loosely, as createLibp2p's service map cannot see that membersOnly hands it every component */
export const realmKad = (): any => kadDHT({
  protocol: KAD_PROTOCOL,
  clientMode: false,
  peerInfoMapper: passthroughMapper,
  allowQueryWithZeroPeers: true,
  validators: { [DHT_NAMESPACE]: realmDhtValidator },
  selectors: { [DHT_NAMESPACE]: realmDhtSelector }
})
