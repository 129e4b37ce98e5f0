import { expect } from 'aegir/chai'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { authProof, deriveKeys, open, seal, verifyProof } from '../src/keys.ts'

const psk = new Uint8Array(32).map((_, i) => i)
const bytes = (fill: number, length = 32): Uint8Array<ArrayBuffer> => new Uint8Array(length).fill(fill)

describe('realm keys', () => {
  it('derives the same keys from the PSK in any encoding, and distinct keys per purpose', () => {
    const keys = deriveKeys(psk)
    expect(deriveKeys(uint8ArrayToString(psk, 'base16'))).to.deep.equal(keys)
    expect(deriveKeys(uint8ArrayToString(psk, 'base64'))).to.deep.equal(keys)
    expect(keys.realmId).to.match(/^[0-9a-f]{32}$/)
    expect(keys.authKey).to.not.deep.equal(keys.sealKey)
    expect(deriveKeys(bytes(1)).realmId).to.not.equal(keys.realmId)
  })

  it('refuses a missing, short or undecodable PSK with InvalidConfigError naming only the option', () => {
    for (const bad of [undefined, 42, new Uint8Array(31), 'abcd', '!!not base64!!']) {
      expect(() => deriveKeys(bad)).to.throw().with.property('name', 'InvalidConfigError')
    }
    try {
      deriveKeys('0011223344')
    } catch (err: any) {
      expect(err.message).to.not.include('0011223344')
      expect(err.option).to.equal('psk')
    }
  })

  it('a proof verifies only for the same peers, nonces and realm: one from another connection is useless', () => {
    const keys = deriveKeys(psk)
    const [a, b, n1, n2, n3] = [bytes(1), bytes(2), bytes(3), bytes(4), bytes(5)]
    const proof = authProof(keys, a, b, n1, n2, 5n)
    expect(verifyProof(keys, proof, a, b, n1, n2, 5n)).to.be.true()
    expect(verifyProof(keys, proof, a, b, n1, n3, 5n), 'new verifier nonce').to.be.false()
    expect(verifyProof(keys, proof, a, b, n3, n2, 5n), 'new prover nonce').to.be.false()
    expect(verifyProof(keys, proof, b, a, n1, n2, 5n), 'reflected back').to.be.false()
    expect(verifyProof(keys, proof, a, bytes(6), n1, n2, 5n), 'another verifier').to.be.false()
    expect(verifyProof(deriveKeys(bytes(9)), proof, a, b, n1, n2, 5n), 'another realm').to.be.false()
    expect(verifyProof(keys, undefined, a, b, n1, n2, 5n)).to.be.false()
    expect(verifyProof(keys, proof, a, b, n1, n2, 6n), 'another seq').to.be.false()
  })

  it('seals and opens only with the same realm key and purpose', () => {
    const keys = deriveKeys(psk)
    const box = seal(keys, 'announcement', bytes(7, 100))
    expect(open(keys, 'announcement', box)).to.deep.equal(bytes(7, 100))
    expect(open(keys, 'dht', box)).to.be.undefined()
    expect(open(deriveKeys(bytes(9)), 'announcement', box)).to.be.undefined()
    box.ciphertext[0] ^= 1
    expect(open(keys, 'announcement', box)).to.be.undefined()
    expect(open(keys, 'announcement', { iv: bytes(0, 3), ciphertext: box.ciphertext })).to.be.undefined()
  })
})
