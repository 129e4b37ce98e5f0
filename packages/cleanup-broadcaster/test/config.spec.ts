import { createNode, stopAll } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { configOf } from '../src/config.ts'
import { CLOSING_WINDOW_MS, READY_CONDITIONS, REPLACE_CONNECTIONS } from '../src/constants.ts'
import { cleanupBroadcaster, defaults, logging, recovery } from '../src/index.ts'
import type { CleanupBroadcasterInit } from '../src/index.ts'
import type { Libp2p } from '@libp2p/interface'

describe('cleanup-broadcaster: config', () => {
  it('fills every option from the one defaults table', () => {
    expect(defaults).to.deep.equal({ closingWindowMs: CLOSING_WINDOW_MS, readyConditions: READY_CONDITIONS, replaceConnections: REPLACE_CONNECTIONS })
    const config = configOf({})
    expect(config).to.include({ closingWindowMs: 0, replaceConnections: true })
    expect(config.readyConditions).to.deep.equal(['connected'])
    expect(config.middleware.map(m => m.middlewareName)).to.deep.equal(['recovery'])
    expect(configOf(undefined).closingWindowMs).to.equal(defaults.closingWindowMs)
  })

  it('takes the edges of every range, and puts recovery() in front only when it is missing', () => {
    expect(configOf({ closingWindowMs: 2 ** 31 - 1 }).closingWindowMs).to.equal(2 ** 31 - 1)
    expect(configOf({ readyConditions: ['connected', 'identified', 'connected'] }).readyConditions).to.deep.equal(['connected', 'identified'])
    expect(configOf({ middleware: [logging()] }).middleware.map(m => m.middlewareName)).to.deep.equal(['recovery', 'logging'])
    expect(configOf({ middleware: [logging(), recovery()] }).middleware.map(m => m.middlewareName)).to.deep.equal(['logging', 'recovery'])
  })

  describe('bad config fails at construction with InvalidConfigError naming the option', () => {
    const nodes: { node?: Libp2p } = {}

    before(async () => { nodes.node = await createNode() })
    after(async () => { await stopAll([nodes.node]) })

    const rows: Array<[string, string, CleanupBroadcasterInit]> = [
      ['closingWindowMs', '-1', { closingWindowMs: -1 }],
      ['closingWindowMs', 'NaN', { closingWindowMs: Number.NaN }],
      ['closingWindowMs', 'Infinity', { closingWindowMs: Number.POSITIVE_INFINITY }],
      ['closingWindowMs', '2^31, which a timer would cut to 1 ms', { closingWindowMs: 2 ** 31 }],
      ['closingWindowMs', 'a string', { closingWindowMs: '5' as any }],
      ['readyConditions', 'empty', { readyConditions: [] }],
      ['readyConditions', 'with an empty name', { readyConditions: ['connected', ''] }],
      ['readyConditions', 'a string', { readyConditions: 'connected' as any }],
      ['replaceConnections', 'a string', { replaceConnections: 'yes' as any }],
      ['middleware', 'not functions', { middleware: ['x'] as any }],
      ['middleware', 'one middleware, not an array', { middleware: recovery() as any }]
    ]
    for (const [option, what, init] of rows) {
      it(`${option}: ${what}`, () => {
        const components = { logger: nodes.node?.logger, peerId: nodes.node?.peerId }
        expect(() => cleanupBroadcaster(init)(components as any))
          .to.throw().with.property('name', 'InvalidConfigError')
        expect(() => configOf(init)).to.throw().with.property('option', option)
      })
    }
  })
})
