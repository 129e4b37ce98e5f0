import { expect } from 'aegir/chai'
import { epochsToFind, nextRetryDelay, provideRound, rendezvousEpoch } from '../src/policy.ts'

/** epochs of 100 ms and a reprovide interval of 10 ms keep the boundaries readable */
const EPOCH = 100
const INTERVAL = 10

describe('rendezvous policy', () => {
  it('rendezvousEpoch: slices of Unix time, the boundary belongs to the next one', () => {
    for (const [now, epoch] of [[0, 0], [99, 0], [100, 1], [199, 1], [250, 2]]) {
      expect(rendezvousEpoch(now, EPOCH), `now ${now}`).to.equal(epoch)
    }
  })

  it('provideRound: the next epoch joins within one interval of its boundary; past epochs are cancelled', () => {
    const cases: Array<{ now: number, provided: number[], provide: number[], cancel: number[] }> = [
      { now: 50, provided: [], provide: [0], cancel: [] },
      { now: 89, provided: [0], provide: [0], cancel: [] },
      { now: 90, provided: [0], provide: [0, 1], cancel: [] },
      { now: 99, provided: [0, 1], provide: [0, 1], cancel: [] },
      { now: 100, provided: [0, 1], provide: [1], cancel: [0] },
      { now: 250, provided: [0, 1, 2, 3], provide: [2], cancel: [0, 1] }
    ]
    for (const { now, provided, provide, cancel } of cases) {
      expect(provideRound(now, provided, EPOCH, INTERVAL), `now ${now}`).to.deep.equal({ provide, cancel })
    }
  })

  it('epochsToFind: the current epoch and the previous one, none before epoch 0', () => {
    for (const [now, epochs] of [[0, [0]], [99, [0]], [100, [1, 0]], [250, [2, 1]]] as const) {
      expect(epochsToFind(now, EPOCH), `now ${now}`).to.deep.equal(epochs)
    }
  })

  it('nextRetryDelay: the interval after a success, a doubling retry delay after failures, capped at the interval', () => {
    for (const [failures, delay] of [[0, 3600], [1, 10], [2, 20], [3, 40], [9, 2560], [10, 3600], [5000, 3600]]) {
      expect(nextRetryDelay(failures, 3600, 10), `${failures} failures`).to.equal(delay)
    }
  })
})
