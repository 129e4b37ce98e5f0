import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { createDhtRecord, dhtKey, openDhtRecord, realmDhtSelector, realmDhtValidator } from '../src/dht.ts'
import { deriveKeys } from '../src/keys.ts'
import { DhtRecord } from '../src/pb/realm.ts'

const realmId = deriveKeys(new Uint8Array(32).fill(7)).realmId
const sealed = new Uint8Array(40).fill(3)

describe('realm DHT records', () => {
  it('a record signed by the key in its peer ID validates, without the realm key', async () => {
    const key = await generateKeyPair('Ed25519')
    const peer = peerIdFromPrivateKey(key)
    const value = await createDhtRecord(realmId, 5n, sealed, key)
    await realmDhtValidator(dhtKey(realmId, peer), value)
    expect((await openDhtRecord(dhtKey(realmId, peer), value)).seq).to.equal(5n)
  })

  it('rejects a wrong signature, someone else\'s key, another realm\'s key and a tampered seq', async () => {
    const key = await generateKeyPair('Ed25519')
    const other = await generateKeyPair('Ed25519')
    const peer = peerIdFromPrivateKey(key)
    const value = await createDhtRecord(realmId, 5n, sealed, key)
    const decoded = DhtRecord.decode(value)

    const badSignature = DhtRecord.encode({ ...decoded, signature: new Uint8Array(64).fill(1) })
    await expect(realmDhtValidator(dhtKey(realmId, peer), badSignature)).to.eventually.be.rejected()
    // signed by another peer but stored under this peer's key
    const forged = await createDhtRecord(realmId, 9n, sealed, other)
    await expect(realmDhtValidator(dhtKey(realmId, peer), forged)).to.eventually.be.rejected()
    await expect(realmDhtValidator(dhtKey('0'.repeat(32), peer), value)).to.eventually.be.rejected()
    await expect(realmDhtValidator(dhtKey(realmId, peer), DhtRecord.encode({ ...decoded, seq: 6n }))).to.eventually.be.rejected()
    await expect(realmDhtValidator(new TextEncoder().encode('/other/key'), value)).to.eventually.be.rejected()
    await expect(realmDhtValidator(dhtKey(realmId, peer), new Uint8Array(20 * 1024))).to.eventually.be.rejected()
  })

  it('the selector picks the highest valid seq; a forged record never wins', async () => {
    const key = await generateKeyPair('Ed25519')
    const other = await generateKeyPair('Ed25519')
    const k = dhtKey(realmId, peerIdFromPrivateKey(key))
    const records = [
      await createDhtRecord(realmId, 3n, sealed, key),
      await createDhtRecord(realmId, 99n, sealed, other),
      await createDhtRecord(realmId, 7n, sealed, key),
      await createDhtRecord(realmId, 5n, sealed, key)
    ]
    expect(await realmDhtSelector(k, records)).to.equal(2)
  })
})
