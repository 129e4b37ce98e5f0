/**
 * Realm DHT records, `/holdfast-realm/<realmId>/<peerId>`. The value is signed by the peer's own
 * key over the realm ID, the seq and the sealed announcement, so any kad-dht node (a member or
 * not) validates it and picks the newest without being able to read the addresses inside.
 */

import { peerIdFromString } from '@libp2p/peer-id'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { MAX_MESSAGE_SIZE } from './constants.ts'
import { DhtRecord } from './pb/realm.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'

/** the kad-dht key namespace: configure `validators` and `selectors` under it */
export const DHT_NAMESPACE = 'holdfast-realm'

const SIGNING_DOMAIN = 'holdfast/realm/dht'

export function dhtKey (realmId: string, peer: PeerId): Uint8Array {
  return uint8ArrayFromString(`/${DHT_NAMESPACE}/${realmId}/${peer.toString()}`)
}

function signedBytes (realmId: string, seq: bigint, sealed: Uint8Array): Uint8Array {
  const prefix = uint8ArrayFromString(`${SIGNING_DOMAIN}${realmId}`)
  const out = new Uint8Array(prefix.length + 8 + sealed.length)
  out.set(prefix)
  new DataView(out.buffer).setBigUint64(prefix.length, seq)
  out.set(sealed, prefix.length + 8)
  return out
}

export async function createDhtRecord (realmId: string, seq: bigint, sealed: Uint8Array<ArrayBuffer>, privateKey: PrivateKey): Promise<Uint8Array> {
  const signature = new Uint8Array(await privateKey.sign(signedBytes(realmId, seq, sealed)))
  return DhtRecord.encode({ seq, sealed, signature })
}

/** `{ realmId, peer }` of a realm key; throws on anything else */
function parseKey (key: Uint8Array): { realmId: string, peer: PeerId } {
  const parts = uint8ArrayToString(key).split('/')
  if (parts.length !== 4 || parts[0] !== '' || parts[1] !== DHT_NAMESPACE || !/^[0-9a-f]{32}$/.test(parts[2])) {
    throw new Error('Not a realm DHT key')
  }
  return { realmId: parts[2], peer: peerIdFromString(parts[3]) }
}

/** the decoded record when it is valid for `key`; throws (kad-dht's way to reject) otherwise */
export async function openDhtRecord (key: Uint8Array, value: Uint8Array): Promise<DhtRecord> {
  if (value.byteLength > MAX_MESSAGE_SIZE) {
    throw new Error('Realm DHT record too big')
  }
  const { realmId, peer } = parseKey(key)
  const record = DhtRecord.decode(value)
  // Ed25519 and secp256k1 peer IDs carry their public key: no lookup, no address needed
  if (peer.publicKey == null) {
    throw new Error('Realm DHT records need a peer ID that embeds its public key')
  }
  if (!(await peer.publicKey.verify(signedBytes(realmId, record.seq, record.sealed), record.signature))) {
    throw new Error('Bad realm DHT record signature')
  }
  return record
}

/** kad-dht validator for the `holdfast-realm` namespace */
export async function realmDhtValidator (key: Uint8Array, value: Uint8Array): Promise<void> {
  await openDhtRecord(key, value)
}

/** kad-dht selector for the `holdfast-realm` namespace: the valid record with the highest seq */
export async function realmDhtSelector (key: Uint8Array, records: Uint8Array[]): Promise<number> {
  let best = 0
  let bestSeq = -1n
  for (const [i, value] of records.entries()) {
    try {
      const { seq } = await openDhtRecord(key, value)
      if (seq > bestSeq) {
        best = i
        bestSeq = seq
      }
    } catch {
      // an invalid record never wins
    }
  }
  return best
}
