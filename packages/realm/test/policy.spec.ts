import { expect } from 'aegir/chai'
import { announcementAge, authFailureVerdict, setBounded, expiredMembers, isFreshSeq, nextAnnounceDelay, nextSeq, publishableAddrs, rejectBackoff, relayAddrs, seqRetention } from '../src/policy.ts'

/** two peer IDs, for addresses: a relay and its client */
const R = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'
const X = '12D3KooWHFrmLWTTDD4NodngtRMEVYgxrsDMp4F9iSwYntZ9WjHa'

describe('realm policy', () => {
  it('nextAnnounceDelay stays within ± jitter of the interval', () => {
    expect(nextAnnounceDelay(10_000, 0.2, 0)).to.equal(8_000)
    expect(nextAnnounceDelay(10_000, 0.2, 0.5)).to.equal(10_000)
    expect(nextAnnounceDelay(10_000, 0.2, 0.999999)).to.equal(12_000)
    expect(nextAnnounceDelay(1, 0.9, 0)).to.equal(1)
  })

  it('isFreshSeq accepts only a seq above the last accepted one and not below the floor proved in auth', () => {
    expect(isFreshSeq(undefined, 0n)).to.be.true()
    expect(isFreshSeq({ seq: 5n }, 6n)).to.be.true()
    expect(isFreshSeq({ seq: 5n }, 5n)).to.be.false()
    expect(isFreshSeq({ seq: 5n }, 4n)).to.be.false()
    expect(isFreshSeq({ floor: 5n }, 5n), 'the announcement the peer had made when it proved 5').to.be.true()
    expect(isFreshSeq({ floor: 5n }, 4n), 'made before the auth').to.be.false()
    expect(isFreshSeq({ seq: 3n, floor: 5n }, 4n)).to.be.false()
    expect(isFreshSeq({ seq: 7n, floor: 5n }, 7n)).to.be.false()
  })

  it('announcementAge: good for maxAge after issue, with the skew allowed both ways', () => {
    expect(announcementAge(100_000, 100_000, 30_000, 10_000)).to.equal('ok')
    expect(announcementAge(100_000, 60_000, 30_000, 10_000), 'exactly maxAge + skew old').to.equal('ok')
    expect(announcementAge(100_000, 59_999, 30_000, 10_000)).to.equal('stale')
    expect(announcementAge(100_000, 110_000, 30_000, 10_000), 'exactly skew ahead').to.equal('ok')
    expect(announcementAge(100_000, 110_001, 30_000, 10_000)).to.equal('future')
    expect(announcementAge(0, 0, 0, 0)).to.equal('ok')
  })

  it('seqRetention outlasts the oldest acceptable announcement on both clocks', () => {
    expect(seqRetention(30_000, 10_000)).to.equal(50_000)
    // an announcement accepted at t (issued up to skew ahead) is stale by t + skew + maxAge + skew
    const t = 1_000
    expect(announcementAge(t + seqRetention(30_000, 10_000) + 1, t + 10_000, 30_000, 10_000)).to.equal('stale')
    // at exactly t + retention it is still acceptable: the member list keeps the seq until after keepUntil, not at it
    expect(announcementAge(t + seqRetention(30_000, 10_000), t + 10_000, 30_000, 10_000)).to.equal('ok')
    for (const [maxAge, skew] of [[3_000, 1_500], [30_000, 0], [1, 1]]) {
      expect(announcementAge(t + seqRetention(maxAge, skew), t + skew, maxAge, skew), `maxAge ${maxAge}, skew ${skew}, at the retention`).to.equal('ok')
      expect(announcementAge(t + seqRetention(maxAge, skew) + 1, t + skew, maxAge, skew), `maxAge ${maxAge}, skew ${skew}, 1 ms after`).to.equal('stale')
    }
  })

  it('rejectBackoff doubles from the initial delay and stops at the cap', () => {
    expect(rejectBackoff(1, 10_000, 600_000)).to.equal(10_000)
    expect(rejectBackoff(2, 10_000, 600_000)).to.equal(20_000)
    expect(rejectBackoff(6, 10_000, 600_000)).to.equal(320_000)
    expect(rejectBackoff(7, 10_000, 600_000)).to.equal(600_000)
    expect(rejectBackoff(1e9, 10_000, 600_000)).to.equal(600_000)
    expect(rejectBackoff(0, 10_000, 600_000)).to.equal(10_000)
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
      { addr: `/ip4/9.9.9.9/tcp/1/p2p/${R}/p2p-circuit`, verified: false },
      { addr: '/ip4/1.2.3.4/tcp/1', verified: true }
    ])).to.deep.equal(['/ip4/1.2.3.4/tcp/1', `/ip4/9.9.9.9/tcp/1/p2p/${R}/p2p-circuit`])
  })

  it('publishableAddrs: WebRTC signalled over a relay counts as a circuit', () => {
    expect(publishableAddrs([
      { addr: `/ip4/9.9.9.9/tcp/1/p2p/${R}/p2p-circuit/webrtc`, verified: false },
      { addr: '/ip4/9.9.9.9/udp/1/webrtc-direct', verified: false }
    ])).to.deep.equal([`/ip4/9.9.9.9/tcp/1/p2p/${R}/p2p-circuit/webrtc`])
  })

  it('relayAddrs: the relay part of circuit addresses that name their relay, each once', () => {
    expect(relayAddrs([
      `/ip4/9.9.9.9/tcp/1/p2p/${R}/p2p-circuit/p2p/${X}`,
      `/ip4/9.9.9.9/tcp/1/p2p/${R}/p2p-circuit`,
      `/ip4/9.9.9.9/tcp/1/p2p/${R}/p2p-circuit/webrtc`,
      '/ip4/9.9.9.9/tcp/1/p2p-circuit',
      '/ip4/1.2.3.4/tcp/1',
      'not a multiaddr'
    ])).to.deep.equal([`/ip4/9.9.9.9/tcp/1/p2p/${R}`])
    expect(relayAddrs([])).to.deep.equal([])
  })

  it('authFailureVerdict: who is closed, denied or expelled', () => {
    const facts = { reason: 'bad-proof', outbound: false, infrastructure: false, known: false, connected: false, exclusive: true }
    const verdict = (over: Partial<typeof facts>): ReturnType<typeof authFailureVerdict> => authFailureVerdict({ ...facts, ...over })
    expect(verdict({})).to.deep.equal({ count: true, expel: false, close: 'auth-failed', deny: true })
    expect(verdict({ reason: 'timeout' })).to.deep.equal({ count: true, expel: false, close: 'auth-timeout', deny: true })
    expect(verdict({ exclusive: false }), 'not exclusive: counted only').to.deep.equal({ count: true, expel: false, deny: false })
    expect(verdict({ infrastructure: true }), 'infrastructure never authenticates').to.deep.equal({ count: false, expel: false, deny: false })
    expect(verdict({ reason: 'not-running' })).to.deep.equal({ count: false, expel: false, deny: false })
    for (const reason of ['closed', 'duplicate-stream']) {
      expect(verdict({ reason }), reason).to.deep.equal({ count: true, expel: false, deny: false })
    }
    expect(verdict({ connected: true }), 'authenticated on another connection').to.deep.equal({ count: true, expel: false, deny: false })
    expect(verdict({ outbound: true, reason: 'unsupported' }), 'a plain peer this node dialled').to.deep.equal({ count: true, expel: false, deny: false })
    expect(verdict({ outbound: false, reason: 'unsupported' }), 'a plain peer that dialled in').to.deep.equal({ count: true, expel: false, close: 'auth-failed', deny: true })
    expect(verdict({ known: true, reason: 'timeout' }), 'a listed member with a stalled stream: closed, not denied').to.deep.equal({ count: true, expel: false, close: 'auth-timeout', deny: false })
    expect(verdict({ known: true }), 'a listed member with a wrong proof').to.deep.equal({ count: true, expel: true, close: 'auth-failed', deny: true })
    expect(verdict({ known: true, exclusive: false, reason: 'unsupported' })).to.deep.equal({ count: true, expel: true, deny: false })
  })

  it('setBounded keeps the most recently updated entries, at most max', () => {
    const map = new Map([['a', 1], ['b', 2], ['c', 3]])
    setBounded(map, 'a', 4, 3)
    expect([...map.keys()], 'an update moves it to the back').to.deep.equal(['b', 'c', 'a'])
    setBounded(map, 'd', 5, 3)
    expect([...map.entries()]).to.deep.equal([['c', 3], ['a', 4], ['d', 5]])
    setBounded(map, 'e', 6, 1)
    expect([...map.entries()]).to.deep.equal([['e', 6]])
  })
})
