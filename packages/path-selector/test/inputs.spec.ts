import { createNode } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { pathSelector } from '../src/index.ts'
import { nodesOfEachTest } from './nodes.ts'

describe('bad input', () => {
  const nodes = nodesOfEachTest('paths')

  it('every call rejects a malformed argument with InvalidArgumentError naming it, and changes nothing', async () => {
    const [a, b] = await Promise.all([createNode({ services: { paths: pathSelector() } }), createNode()])
    nodes.push(a, b)
    const paths = a.services.paths
    await a.dial(b.getMultiaddrs())
    const before = paths.internalSizes()
    const known = paths.paths(b.peerId)
    expect(known).to.have.length(1)

    const sync: Array<[() => unknown, string]> = [
      [() => paths.paths('peer' as any), 'peer'],
      [() => paths.best(undefined as any), 'peer'],
      [() => paths.mode({} as any), 'peer'],
      [() => { paths.report(b.peerId, 42 as any, { success: true }) }, 'connectionId']
    ]
    for (const [call, argument] of sync) {
      expect(call).to.throw().that.deep.includes({ name: 'InvalidArgumentError', argument })
    }
    const async: Array<[() => Promise<unknown>, string]> = [
      [async () => paths.connect('peer' as any), 'peer'],
      [async () => paths.connect(b.peerId, 'fast' as any), 'options'],
      [async () => paths.connect(b.peerId, { signal: 'soon' as any }), 'options.signal'],
      [async () => paths.connect(b.peerId, { addrs: ['/ip4/127.0.0.1/tcp/1'] as any }), 'options.addrs'],
      [async () => paths.openStream(null as any, '/x/1.0.0'), 'peer'],
      [async () => paths.openStream(b.peerId, []), 'protocols'],
      [async () => paths.openStream(b.peerId, ''), 'protocols'],
      [async () => paths.openStream(b.peerId, '/x/1.0.0', 5 as any), 'options'],
      [async () => paths.upgrade(42 as any), 'peer'],
      [async () => paths.upgrade(b.peerId, { signal: {} as any }), 'options.signal']
    ]
    for (const [call, argument] of async) {
      const error = await call().then(() => undefined, err => err)
      expect(error, argument).to.deep.include({ name: 'InvalidArgumentError', argument })
    }
    expect(paths.internalSizes()).to.deep.equal(before)
    expect(paths.paths(b.peerId)).to.deep.equal(known)
  })
})
