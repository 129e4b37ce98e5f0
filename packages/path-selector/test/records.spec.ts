import { expect } from 'aegir/chai'
import { selectPath } from '../src/policy.ts'
import { choosePath } from '../src/records.ts'
import type { PathCandidate } from '../src/policy.ts'
import type { PathRecord } from '../src/records.ts'
import type { Logger } from '@libp2p/interface'

const errors: unknown[][] = []
const log = Object.assign(() => {}, { error: (...args: unknown[]) => { errors.push(args) }, trace: () => {}, enabled: false, newScope: () => log }) as unknown as Logger

let ids = 0
const record = (kind: 'direct' | 'relayed', rttMs?: number): PathRecord => ({ id: `c${++ids}`, kind, status: 'active', rttMs, holePunched: false, realmRelay: false } as unknown as PathRecord)

describe('choosePath', () => {
  beforeEach(() => { errors.length = 0 })

  it('the default reads the records themselves', () => {
    const candidates = [record('relayed', 5), record('direct', 50)]
    expect(choosePath(selectPath, candidates, undefined, log)).to.equal(candidates[1])
  })

  it('a custom choice gets frozen copies and its pick is matched back to the record by id; undefined is honoured', () => {
    const candidates = [record('relayed', 5), record('direct', 50)]
    let got: readonly PathCandidate[] = []
    const pick = choosePath((c) => { got = c; return c[0] }, candidates, candidates[1], log)
    expect(pick).to.equal(candidates[0])
    expect(got[0]).to.not.equal(candidates[0])
    expect(Object.isFrozen(got[0])).to.equal(true)
    expect(choosePath(() => undefined, candidates, candidates[1], log)).to.equal(undefined)
    expect(errors).to.deep.equal([])
  })

  it('a custom choice that throws or picks what is not an open candidate is logged and replaced by the default', () => {
    const candidates = [record('relayed', 5), record('direct', 50)]
    expect(choosePath(() => { throw new Error('boom') }, candidates, undefined, log)).to.equal(candidates[1])
    expect(choosePath(() => ({ id: 'elsewhere', kind: 'relayed', status: 'active' }), candidates, undefined, log)).to.equal(candidates[1])
    expect(errors).to.have.length(2)
  })
})
