import { expect } from 'aegir/chai'
import { expiredMembers, isFreshSeq, nextAnnounceDelay, nextSeq, publishableAddrs, relayAddrs } from '../src/policy.ts'

describe('realm policy', () => {
  it('nextAnnounceDelay stays within ± jitter of the interval', () => {
    expect(nextAnnounceDelay(10_000, 0.2, 0)).to.equal(8_000)
    expect(nextAnnounceDelay(10_000, 0.2, 0.5)).to.equal(10_000)
    expect(nextAnnounceDelay(10_000, 0.2, 0.999999)).to.equal(12_000)
    expect(nextAnnounceDelay(1, 0.9, 0)).to.equal(1)
  })

  it('isFreshSeq accepts only a seq above the last', () => {
    expect(isFreshSeq(undefined, 0n)).to.be.true()
    expect(isFreshSeq(5n, 6n)).to.be.true()
    expect(isFreshSeq(5n, 5n)).to.be.false()
    expect(isFreshSeq(5n, 4n)).to.be.false()
  })

  it('nextSeq always goes up, and jumps to the clock after a restart', () => {
    expect(nextSeq(0n, 1000)).to.equal(1000n)
    expect(nextSeq(1000n, 1000)).to.equal(1001n)
    expect(nextSeq(5000n, 1000)).to.equal(5001n)
    expect(nextSeq(0n, -5)).to.equal(1n)
  })

  it('expiredMembers: silent for ttl and not connected', () => {
    const members = [
      { id: 'silent', lastSeen: 0, connected: false },
      { id: 'edge', lastSeen: 1, connected: false },
      { id: 'connected', lastSeen: 0, connected: true },
      { id: 'recent', lastSeen: 900, connected: false }
    ]
    expect(expiredMembers(members, 1000, 1000)).to.deep.equal(['silent'])
    expect(expiredMembers(members, 1001, 1000)).to.deep.equal(['silent', 'edge'])
    expect(expiredMembers([], 1000, 1)).to.deep.equal([])
  })

  it('publishableAddrs: verified ones and relay circuits, no duplicates', () => {
    expect(publishableAddrs([
      { addr: '/ip4/1.2.3.4/tcp/1', verified: true },
      { addr: '/ip4/5.6.7.8/tcp/1', verified: false },
      { addr: '/ip4/9.9.9.9/tcp/1/p2p/R/p2p-circuit', verified: false },
      { addr: '/ip4/1.2.3.4/tcp/1', verified: true }
    ])).to.deep.equal(['/ip4/1.2.3.4/tcp/1', '/ip4/9.9.9.9/tcp/1/p2p/R/p2p-circuit'])
  })

  it('relayAddrs: the relay part of circuit addresses that name their relay', () => {
    expect(relayAddrs([
      '/ip4/9.9.9.9/tcp/1/p2p/R/p2p-circuit/p2p/X',
      '/ip4/9.9.9.9/tcp/1/p2p/R/p2p-circuit',
      '/ip4/9.9.9.9/tcp/1/p2p-circuit',
      '/ip4/1.2.3.4/tcp/1'
    ])).to.deep.equal(['/ip4/9.9.9.9/tcp/1/p2p/R'])
  })
})
