/**
 * What an outsider puts on the auth stream in `realm-reject`, encoded by hand: `@holdfast/realm`
 * does not export its protobuf codecs; the field numbers are those of
 * `packages/realm/src/pb/realm.proto`.
 */

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
