import { peerIdFromString } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import fc from 'fast-check'
import { cleanupTrigger, isReady, replacementVictim } from '../src/policy.ts'
import type { ConnectionFacts } from '../src/policy.ts'

const out = (path: 'direct' | 'relayed' = 'direct'): ConnectionFacts => ({ direction: 'outbound', path })
const inb = (path: 'direct' | 'relayed' = 'direct'): ConnectionFacts => ({ direction: 'inbound', path })
const peer = peerIdFromString('12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5')

describe('policy', () => {
  describe('replacementVictim', () => {
    const small = 'aaa'
    const big = 'zzz'

    it('never replaces across path kinds: a relayed backup beside a direct path is wanted', () => {
      expect(replacementVictim(out('direct'), out('relayed'), small, big)).to.equal('none')
      expect(replacementVictim(inb('relayed'), out('direct'), small, big)).to.equal('none')
    })

    it('both dialed by us: the newer wins', () => {
      expect(replacementVictim(out(), out(), small, big)).to.equal('older')
      expect(replacementVictim(out(), out(), big, small)).to.equal('older')
    })

    it('both dialed by them: they decide, we close nothing', () => {
      expect(replacementVictim(inb(), inb(), small, big)).to.equal('none')
      expect(replacementVictim(inb(), inb(), big, small)).to.equal('none')
    })

    it('simultaneous dial: the connection dialed by the smaller peer ID survives', () => {
      // we are smaller: our outbound survives whichever came first
      expect(replacementVictim(out(), inb(), small, big)).to.equal('older')
      expect(replacementVictim(inb(), out(), small, big)).to.equal('newer')
      // they are smaller: their dial (our inbound) survives
      expect(replacementVictim(inb(), out(), big, small)).to.equal('older')
      expect(replacementVictim(out(), inb(), big, small)).to.equal('newer')
    })

    it('both ends always close the same connection (property)', () => {
      const facts = fc.record({ direction: fc.constantFrom('inbound' as const, 'outbound' as const), path: fc.constantFrom('direct' as const, 'relayed' as const) })
      fc.assert(fc.property(facts, facts, fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (newer, older, a, b) => {
        fc.pre(a !== b)
        // the same two connections seen from the other end: directions flip
        const flip = (f: ConnectionFacts): ConnectionFacts => ({ ...f, direction: f.direction === 'inbound' ? 'outbound' : 'inbound' })
        const mine = replacementVictim(newer, older, a, b)
        // the remote may have seen the two open in either order
        const theirsSameOrder = replacementVictim(flip(newer), flip(older), b, a)
        const theirsOtherOrder = replacementVictim(flip(older), flip(newer), b, a)
        const closedByMe = mine === 'none' ? undefined : mine
        const swap = { older: 'newer', newer: 'older', none: 'none' } as const
        const closedByThem = [theirsSameOrder, swap[theirsOtherOrder]]
        for (const theirs of closedByThem) {
          if (closedByMe !== undefined && theirs !== 'none') {
            expect(theirs).to.equal(closedByMe)
          }
        }
      }))
    })
  })

  describe('isReady', () => {
    it('needs every condition', () => {
      expect(isReady(['connected'], undefined)).to.be.false()
      expect(isReady(['connected'], ['connected'])).to.be.true()
      expect(isReady(['connected', 'realm-auth'], ['connected'])).to.be.false()
      expect(isReady(['connected', 'realm-auth'], ['realm-auth', 'connected', 'extra'])).to.be.true()
    })

    it('an implied condition needs no mark', () => {
      expect(isReady(['connected'], undefined, 'connected')).to.be.true()
      expect(isReady(['connected', 'identified'], undefined, 'connected')).to.be.false()
      expect(isReady(['connected', 'identified'], ['identified'], 'connected')).to.be.true()
    })
  })

  describe('cleanupTrigger', () => {
    it('maps the spec table of service events to full cleanups', () => {
      expect(cleanupTrigger('peer:removed', { peer, reason: 'attempts-exhausted' })).to.equal('reconnect-gave-up')
      expect(cleanupTrigger('restart:completed', { peer, success: false })).to.equal('restart-failed')
      expect(cleanupTrigger('restart:completed', { peer, success: true })).to.be.undefined()
      expect(cleanupTrigger('peer:held', { peer })).to.be.undefined()
      expect(cleanupTrigger('peer:gone', { peer, reason: 'peer-disconnected' })).to.be.undefined()
    })
  })
})
