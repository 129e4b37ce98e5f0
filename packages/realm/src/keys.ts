/**
 * Key derivation, the auth proof and sealing. The PSK only ever enters `deriveKeys`: nothing
 * here logs, returns or throws it.
 */

import { InvalidConfigError } from '@holdfast/interface'
import { gcm } from '@noble/ciphers/aes.js'
import { randomBytes } from '@noble/ciphers/utils.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { MIN_PSK_LENGTH } from './constants.ts'

export interface RealmKeys {
  /** public: 16 bytes, hex; names the realm's protocols and topic */
  readonly realmId: string
  readonly authKey: Uint8Array
  readonly sealKey: Uint8Array
  /** keys the rendezvous CID (`rendezvousCid`), so the CID members meet under on a DHT says nothing of the public realm ID */
  readonly rendezvousKey: Uint8Array
}

const SALT = uint8ArrayFromString('holdfast/realm/v1')
const AUTH_DOMAIN = uint8ArrayFromString('holdfast/realm/auth')
const IV_LENGTH = 12

function pskBytes (psk: unknown): Uint8Array {
  if (psk instanceof Uint8Array) {
    return psk
  }
  if (typeof psk === 'string') {
    // never echo the value: the message names the option only
    const text = psk.trim()
    const encoding = /^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0 ? 'base16' : 'base64'
    try {
      return uint8ArrayFromString(text.replace(/[=]+$/, ''), encoding)
    } catch {
      throw new InvalidConfigError('psk must be hex or base64', 'psk')
    }
  }
  throw new InvalidConfigError('psk is required (a Uint8Array, or a hex or base64 string)', 'psk')
}

/** HKDF-SHA256 with one `info` string per key, so no key reveals another or the PSK */
export function deriveKeys (psk: unknown): RealmKeys {
  const ikm = pskBytes(psk)
  if (ikm.length < MIN_PSK_LENGTH) {
    throw new InvalidConfigError(`psk must be at least ${MIN_PSK_LENGTH} bytes`, 'psk')
  }
  const derive = (info: string, length: number): Uint8Array => hkdf(sha256, ikm, SALT, uint8ArrayFromString(info), length)
  return {
    realmId: uint8ArrayToString(derive('realm-id', 16), 'base16'),
    authKey: derive('auth-key', 32),
    sealKey: derive('seal-key', 32),
    rendezvousKey: derive('rendezvous-key', 32)
  }
}

/**
 * `HMAC(authKey, "holdfast/realm/auth" ‖ realmId ‖ prover ‖ verifier ‖ proverNonce ‖ verifierNonce ‖ proverSeq)`.
 * Both peer IDs (authenticated by the secure channel) and both fresh nonces are bound, so a
 * proof is worthless on any other connection. The prover's announcement seq is bound too: the
 * verifier may take it as the floor of the prover's future announcements.
 */
export function authProof (keys: RealmKeys, prover: Uint8Array, verifier: Uint8Array, proverNonce: Uint8Array, verifierNonce: Uint8Array, proverSeq: bigint): Uint8Array<ArrayBuffer> {
  const mac = hmac.create(sha256, keys.authKey)
  mac.update(AUTH_DOMAIN)
  mac.update(uint8ArrayFromString(keys.realmId))
  const seq = new Uint8Array(8)
  new DataView(seq.buffer).setBigUint64(0, BigInt.asUintN(64, proverSeq))
  for (const part of [prover, verifier, proverNonce, verifierNonce, seq]) {
    // length-prefixed, so shifting bytes between neighbouring fields changes the MAC
    mac.update(Uint8Array.of(part.length >> 8, part.length & 0xff))
    mac.update(part)
  }
  return new Uint8Array(mac.digest())
}

export function verifyProof (keys: RealmKeys, proof: Uint8Array | undefined, prover: Uint8Array, verifier: Uint8Array, proverNonce: Uint8Array, verifierNonce: Uint8Array, proverSeq: bigint): boolean {
  // uint8arrays' equals is not constant-time; the MAC is recomputed from fresh nonces each time, so timing reveals nothing reusable
  return proof != null && uint8ArrayEquals(proof, authProof(keys, prover, verifier, proverNonce, verifierNonce, proverSeq))
}

export interface SealedBox {
  iv: Uint8Array<ArrayBuffer>
  ciphertext: Uint8Array<ArrayBuffer>
}

/** AES-256-GCM with a random IV; the realm ID and a purpose label are the associated data */
export function seal (keys: RealmKeys, purpose: string, plaintext: Uint8Array): SealedBox {
  const iv = new Uint8Array(randomBytes(IV_LENGTH))
  return { iv, ciphertext: new Uint8Array(gcm(keys.sealKey, iv, aad(keys, purpose)).encrypt(plaintext)) }
}

/** the plaintext, or undefined when the box was not sealed with this realm's key for this purpose */
export function open (keys: RealmKeys, purpose: string, box: SealedBox): Uint8Array | undefined {
  if (box.iv.length !== IV_LENGTH) {
    return undefined
  }
  try {
    return gcm(keys.sealKey, box.iv, aad(keys, purpose)).decrypt(box.ciphertext)
  } catch {
    return undefined
  }
}

function aad (keys: RealmKeys, purpose: string): Uint8Array {
  return uint8ArrayFromString(`holdfast/realm/${keys.realmId}/${purpose}`)
}

export function randomNonce (length: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(randomBytes(length))
}
