/**
 * Node-only checks (aegir runs test/node.ts under Node alone).
 */

import { getMaxListeners } from 'node:events'
import { connect, disconnect } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { realNodes, settled, untilAborted } from './helpers.ts'

describe('cleanup-broadcaster on Node', () => {
  const nodes = realNodes('memory')

  it('the long-lived signals it hands out take any number of listeners without a leak warning', async () => {
    const { a, b } = nodes
    const { broadcaster } = a.services
    const connection = await connect(a, b)
    const signals: AbortSignal[] = []
    const caller = new AbortController()
    const work = settled([
      broadcaster.track(b.peerId, async (signal) => { signals.push(signal); return untilAborted(signal) }, { signal: caller.signal }),
      broadcaster.track(connection, async (signal) => { signals.push(signal); return untilAborted(signal) }, { timeout: 60_000 })
    ])
    signals.push(broadcaster.signalFor(b.peerId), broadcaster.signalFor(connection))

    // Node warns past 10 listeners on an event target unless told otherwise
    expect(signals.map(signal => getMaxListeners(signal))).to.deep.equal([Infinity, Infinity, Infinity, Infinity])
    await disconnect(a, b)
    expect(await work).to.deep.equal(['ConnectionClosedError', 'ConnectionClosedError'])
  })
})
