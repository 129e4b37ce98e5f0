import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { connect, createNode, stopAll } from '@holdfast/test-utils'
import { putValue } from '@holdfast/test-utils/infrastructure'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { createDhtRecord } from '../src/dht.ts'
import { deriveKeys, dhtKey, membersOnly } from '../src/index.ts'
import { createMember, PSK } from './fixtures.ts'
import { KAD_PROTOCOL, realmKad, storesRecord } from './kad-wire.ts'
import type { Connection, Libp2p } from '@libp2p/interface'

setFlagsFromString('--expose-gc')
const gc: () => void = runInNewContext('gc')

const REALM_ID = deriveKeys(PSK).realmId
/** record attempts in all, from throw-away peer IDs, as in the flood seen before the gate (1,000 × 15 KiB stored 14.9 MB) */
const ATTEMPTS = 10_000
const OUTSIDERS = 4
/** what the member's heap may grow by under the whole flood: stored, the records alone would be about 150 MB */
const HEAP_BUDGET = 20 * 1024 * 1024
const VALUE_SIZE = 15 * 1024

function heap (): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** `count` PUT_VALUEs of validly signed 15 KiB realm records, each for a new peer ID, `parallel` at a time; resolves with how many were answered */
async function flood (connection: Connection, count: number, parallel: number): Promise<{ answered: number, keys: Uint8Array[] }> {
  const sealed = new Uint8Array(VALUE_SIZE).fill(7)
  const keys: Uint8Array[] = []
  const attempt = async (): Promise<boolean> => {
    const key = await generateKeyPair('Ed25519')
    const recordKey = dhtKey(REALM_ID, peerIdFromPrivateKey(key))
    keys.push(recordKey)
    const value = await createDhtRecord(REALM_ID, 1n, sealed, key)
    return putValue(connection, KAD_PROTOCOL, recordKey, value, 5_000).then(() => true, () => false)
  }
  const answers: boolean[] = []
  let started = 0
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (started < count) {
      started++
      answers.push(await attempt())
    }
  }))
  return { answered: answers.filter(Boolean).length, keys }
}

describe('the realm DHT under a flood of records from outsiders', function () {
  this.timeout(240_000)
  let nodes: Array<Libp2p<any>> = []

  afterEach(async () => {
    await stopAll(nodes)
    nodes = []
  })

  it(`${ATTEMPTS} record attempts from outsiders store nothing and leave the member's heap within ${HEAP_BUDGET / 1024 / 1024} MB; the same records stored without the gate (control)`, async () => {
    // not exclusive, so every attempt reaches the DHT's own gate instead of a closed connection
    const member = await createMember({ exclusive: false }, { services: { dht: membersOnly(realmKad()) } })
    const outsiders = await Promise.all(Array.from({ length: OUTSIDERS }, async () => createNode()))
    nodes.push(member, ...outsiders)
    const connections = await Promise.all(outsiders.map(async outsider => connect(outsider, member)))

    const before = heap()
    const results = await Promise.all(connections.map(async connection => flood(connection, ATTEMPTS / OUTSIDERS, 8)))
    const grown = heap() - before
    const attempted = results.reduce((sum, r) => sum + r.keys.length, 0)
    expect(attempted).to.equal(ATTEMPTS)
    expect(results.reduce((sum, r) => sum + r.answered, 0), 'no attempt was answered').to.equal(0)
    for (const key of results.flatMap(r => r.keys).filter((_, i) => i % 500 === 0)) {
      expect(await storesRecord(member, key)).to.be.false()
    }
    expect(member.services.realm.stats().accessDenied).to.be.at.least(ATTEMPTS)
    expect(grown, `heap grew by ${(grown / 1024 / 1024).toFixed(1)} MB`).to.be.below(HEAP_BUDGET)

    // control: a plain realm DHT, the same kind of records, stores them: the attempts are real
    const open = await createNode({ services: { dht: realmKad() } })
    nodes.push(open)
    const control = await flood(await connect(outsiders[0], open), 50, 8)
    expect(control.answered).to.equal(50)
    expect(await storesRecord(open, control.keys[0])).to.be.true()
  })
})
