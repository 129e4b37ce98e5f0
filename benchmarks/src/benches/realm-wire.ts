/**
 * What an outsider puts on the wire in the realm-boundary benchmarks (`realm-reject`,
 * `realm-dht-flood`), encoded by hand: the realm's auth messages, a realm DHT record signed by a
 * throw-away key, and kad-dht's PUT_VALUE. `@holdfast/realm` exports neither its protobuf codecs
 * nor `createDhtRecord`, and `@libp2p/kad-dht` exports `Record` but not its `Message` codec; the
 * field numbers below are those of `packages/realm/src/pb/realm.proto` and kad-dht's
 * `src/message/dht.proto`.
 */

import { dhtKey } from '@holdfast/realm'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Record as KadRecord } from '@libp2p/kad-dht'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'

/** protobuf wire types used here */
const VARINT = 0
const LENGTH_DELIMITED = 2

function varint (value: number | bigint): Uint8Array {
  let v = BigInt(value)
  const bytes: number[] = []
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  bytes.push(Number(v))
  return Uint8Array.from(bytes)
}

function concat (parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}

function bytesField (field: number, value: Uint8Array): Uint8Array {
  return concat([varint((field << 3) | LENGTH_DELIMITED), varint(value.byteLength), value])
}

function varintField (field: number, value: number | bigint): Uint8Array {
  return concat([varint((field << 3) | VARINT), varint(value)])
}

/** realm `AuthMessage { nonce = 1 }`: the dialer's hello */
export function authHello (nonce: Uint8Array): Uint8Array {
  return bytesField(1, nonce)
}

/** realm `AuthMessage { proof = 2, seq = 4 }`: the dialer's answer (here a proof made without the PSK) */
export function authAnswer (proof: Uint8Array, seq: bigint): Uint8Array {
  return concat([bytesField(2, proof), varintField(4, seq)])
}

/** the auth protocol of a realm (its ID is public: it names the protocols a member's identify lists) */
export function authProtocol (realmId: string): string {
  return `/holdfast/realm/${realmId}/auth/1.0.0`
}

/** the realm DHT's kad protocol, as `holdfast relay` configures it */
export function realmKadProtocol (realmId: string): string {
  return `/holdfast/realm/${realmId}/kad/1.0.0`
}

/**
 * A realm DHT record `DhtRecord { seq = 1, sealed = 2, signature = 3 }` for a fresh throw-away
 * Ed25519 identity, signed as `realmDhtValidator` checks it: by the key inside the peer ID, over
 * "holdfast/realm/dht" ‖ realmId ‖ seq (8 bytes, big-endian) ‖ sealed. Returns the kad-dht key
 * and value. Any DHT node with the realm validator accepts it; `sealed` is never opened there.
 */
export async function throwAwayRealmRecord (realmId: string, sealed: Uint8Array, seq = 1n): Promise<{ key: Uint8Array, value: Uint8Array }> {
  const privateKey = await generateKeyPair('Ed25519')
  const prefix = new TextEncoder().encode(`holdfast/realm/dht${realmId}`)
  const signed = new Uint8Array(prefix.length + 8 + sealed.length)
  signed.set(prefix)
  new DataView(signed.buffer).setBigUint64(prefix.length, seq)
  signed.set(sealed, prefix.length + 8)
  const signature = await privateKey.sign(signed)
  return {
    key: dhtKey(realmId, peerIdFromPrivateKey(privateKey)),
    value: concat([varintField(1, seq), bytesField(2, sealed), bytesField(3, signature)])
  }
}

/** kad-dht `Message { type = 1 (PUT_VALUE = 0), key = 2, record = 3 }` carrying a libp2p `Record` */
export function kadPutValue (key: Uint8Array, value: Uint8Array): Uint8Array {
  const record = new KadRecord(key, value, new Date()).serialize()
  return concat([varintField(1, 0), bytesField(2, key), bytesField(3, record)])
}
