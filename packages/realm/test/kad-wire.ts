/**
 * The realm's kad-dht as `@holdfast/node` configures it, and a look into a node's record store
 * (the PUT_VALUE an outsider sends is `putValue` of `@holdfast/test-utils/infrastructure`).
 */

import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { deriveKeys, DHT_NAMESPACE, realmDhtProtocol, realmDhtSelector, realmDhtValidator } from '../src/index.ts'
import { PSK } from './fixtures.ts'
import type { Libp2p } from '@libp2p/interface'

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
export const KAD_PROTOCOL = realmDhtProtocol(deriveKeys(PSK).realmId)

/** kad-dht as `@holdfast/node` configures it for the realm (its own protocol, realm validator and selector); typed loosely, as createLibp2p's service map cannot see that membersOnly hands it every component */
export const realmKad = (): any => kadDHT({
  protocol: KAD_PROTOCOL,
  clientMode: false,
  peerInfoMapper: passthroughMapper,
  allowQueryWithZeroPeers: true,
  validators: { [DHT_NAMESPACE]: realmDhtValidator },
  selectors: { [DHT_NAMESPACE]: realmDhtSelector }
})
