import { onceEvent } from '@holdfast/test-utils'
import { relayServer } from '@holdfast/test-utils/infrastructure'
import { expect } from 'aegir/chai'
import { pathSelector, selectPath } from '../src/index.ts'
import { directAddrsOf, nodesOfEachTest, relayedAddrsOf, relayedNode } from './nodes.ts'
import type { PathCandidate, SelectPath } from '../src/index.ts'

const PING = '/ipfs/ping/1.0.0'

describe('a custom selectPath (real nodes on 127.0.0.1 TCP, circuit relay v2)', () => {
  const nodes = nodesOfEachTest('paths')

  it('is what picks the path: one that prefers relayed paths keeps the traffic on the relay beside a direct path', async () => {
    const seen: PathCandidate[][] = []
    const preferRelayed: SelectPath = (candidates, current) => {
      seen.push([...candidates])
      return candidates.find(c => c.kind === 'relayed' && c.status === 'active') ?? selectPath(candidates, current)
    }
    const relay = await relayServer()
    nodes.push(relay)
    const b = await relayedNode({ behind: relay })
    nodes.push(b)
    const a = await relayedNode({ services: { paths: pathSelector({ upgrade: false, selectPath: preferRelayed }) } })
    nodes.push(a)
    const paths = a.services.paths

    const relayed = await paths.connect(b.peerId, { addrs: relayedAddrsOf(b) })
    const opened = onceEvent(a, 'connection:open', c => c.remotePeer.equals(b.peerId) && c.direct)
    const direct = await a.dial(directAddrsOf(b))
    await opened

    expect(paths.paths(b.peerId).map(p => p.kind)).to.deep.equal(['relayed', 'direct'])
    // the default would pick the direct path (direct-primary); this choice keeps the relay
    expect(selectPath(paths.paths(b.peerId).map(p => ({ id: p.connectionId, kind: p.kind, status: p.status, rttMs: p.rttMs }))))
      .to.have.property('id', direct.id)
    expect(paths.best(b.peerId)?.connectionId).to.equal(relayed.id)
    expect(paths.mode(b.peerId)).to.equal('relay-only')
    const stream = await paths.openStream(b.peerId, PING)
    expect(a.getConnections(b.peerId).find(c => c.streams.some(s => s.id === stream.id))?.id).to.equal(relayed.id)
    stream.abort(new Error('done'))

    // it saw plain, frozen data: the fields of a PathCandidate and nothing of the service's records
    const last = seen[seen.length - 1]
    expect(last.map(c => c.id).sort()).to.deep.equal([relayed.id, direct.id].sort())
    for (const candidate of last) {
      expect(Object.isFrozen(candidate)).to.equal(true)
      expect(Object.keys(candidate).sort()).to.deep.equal(['holePunched', 'id', 'kind', 'realmRelay', 'rttMs', 'status'])
    }
  })
})
