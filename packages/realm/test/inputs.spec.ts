import { connect, createFakeClock, stopAndExpectNoLeaks } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { configOf } from '../src/config.ts'
import { defaults } from '../src/index.ts'
import { createMember, joined, PSK } from './fixtures.ts'
import type { RealmNode } from './fixtures.ts'
import type { RealmInit } from '../src/index.ts'

/** what the realm holds and has counted: unchanged by a refused call */
function state (node: RealmNode): unknown {
  const realm = node.services.realm
  return { sizes: realm.internalSizes(), stats: realm.stats(), members: realm.members().map(m => m.peerId.toString()) }
}

describe('realm inputs', () => {
  let nodes: RealmNode[] = []

  afterEach(async () => {
    await stopAndExpectNoLeaks(nodes, 'realm')
    nodes = []
  })

  it('every public method refuses a malformed argument with InvalidArgumentError naming it, and changes nothing', async () => {
    // the fake clock holds every realm timer: nothing changes on its own while the calls are made
    const clock = createFakeClock()
    const [a, b] = nodes = await Promise.all([createMember({ clock }), createMember({ clock })])
    await connect(a, b)
    await joined(a, b.peerId)
    const realm = a.services.realm as any
    const sync: Array<[string, () => unknown, string]> = [
      ['isMember(null)', () => realm.isMember(null), 'peer'],
      ['isMember(undefined)', () => realm.isMember(undefined), 'peer'],
      ['isMember(a string)', () => realm.isMember(b.peerId.toString()), 'peer'],
      ['isInfrastructure({})', () => realm.isInfrastructure({}), 'peer']
    ]
    const async: Array<[string, () => Promise<unknown>, string]> = [
      ['connect(undefined)', async () => realm.connect(undefined), 'peer'],
      ['connect(a multiaddr)', async () => realm.connect(b.getMultiaddrs()[0]), 'peer'],
      ['connect(peer, a number)', async () => realm.connect(b.peerId, 5), 'options'],
      ['connect(peer, { signal: {} })', async () => realm.connect(b.peerId, { signal: {} }), 'options.signal'],
      ['authenticate(undefined)', async () => realm.authenticate(undefined), 'connection'],
      ['authenticate(not a connection)', async () => realm.authenticate({ id: 'x', remotePeer: b.peerId }), 'connection'],
      ['authenticate(a peer ID)', async () => realm.authenticate(b.peerId), 'connection'],
      ['publishRecord(a string)', async () => realm.publishRecord('now'), 'options'],
      ['leave(a number)', async () => realm.leave(1), 'options'],
      ['leave({ signal: "x" })', async () => realm.leave({ signal: 'x' }), 'options.signal']
    ]
    const before = state(a)
    for (const [call, fn, argument] of sync) {
      expect(fn, call).to.throw().with.property('name', 'InvalidArgumentError')
      expect(fn, call).to.throw().with.property('argument', argument)
    }
    for (const [call, fn, argument] of async) {
      const result = fn()
      expect(result, `${call} returns a promise`).to.be.an.instanceOf(Promise)
      const err = await result.then(() => undefined, (err: any) => err)
      expect(err, call).to.have.property('name', 'InvalidArgumentError')
      expect(err, call).to.have.property('argument', argument)
    }
    expect(state(a), 'nothing changed').to.deep.equal(before)
    // still in the realm: a refused leave() did not leave
    expect((await realm.connect(b.peerId)).remotePeer.equals(b.peerId)).to.be.true()
    expect(realm.isMember(b.peerId)).to.be.true()
  })

  it('refuses a malformed init with InvalidConfigError naming the option', async () => {
    const table: Array<[Partial<RealmInit>, string]> = [
      [{ announceInterval: 0 }, 'announceInterval'],
      [{ announceInterval: 2 ** 31 }, 'announceInterval'],
      [{ memberTtl: -1 }, 'memberTtl'],
      [{ authTimeout: Number.NaN }, 'authTimeout'],
      [{ clockSkew: -1 }, 'clockSkew'],
      [{ maxMessageSize: 1023 }, 'maxMessageSize'],
      [{ maxMessageSize: 2048.5 }, 'maxMessageSize'],
      [{ maxMessageSize: Infinity }, 'maxMessageSize'],
      [{ natType: 'x'.repeat(33) }, 'natType'],
      [{ exclusive: 'yes' as any }, 'exclusive'],
      [{ infrastructure: ['/ip4/1.2.3.4/tcp/1'] }, 'infrastructure'],
      [{ clock: {} as any }, 'clock']
    ]
    for (const [init, option] of table) {
      expect(() => configOf({ psk: PSK, ...init }), option).to.throw().with.property('option', option)
      expect(() => configOf({ psk: PSK, ...init }), option).to.throw().with.property('name', 'InvalidConfigError')
    }
    expect(configOf({ psk: PSK, clockSkew: 0 }).clockSkew, 'no skew allowed').to.equal(0)
  })

  it('fills every option it lists in defaults from there, and memberTtl from the announce interval', () => {
    const config = configOf({ psk: PSK }) as unknown as Record<string, unknown>
    for (const [option, value] of Object.entries(defaults)) {
      const filled = config[option]
      expect(filled instanceof Set ? [...filled] : filled, option).to.deep.equal(value)
    }
    expect(configOf({ psk: PSK }).memberTtl).to.equal(3 * defaults.announceInterval)
    expect(configOf({ psk: PSK, announceInterval: 2_000 }).memberTtl).to.equal(6_000)
    const clock = createFakeClock()
    expect(configOf({ psk: PSK, clock }).clock).to.equal(clock)
  })
})
