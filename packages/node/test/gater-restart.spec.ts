import { gaterLayers } from '@holdfast/interface'
import { stopAll } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { createHoldfastNode } from '../src/index.ts'
import type { HoldfastRealmNode } from '../src/index.ts'
import type { ConnectionGater } from '@libp2p/interface'

const PSK = new Uint8Array(32).fill(5)
const CHAIN = Symbol.for('@holdfast/gater-chain')

interface Wrapping {
  /** how many holdfast chains wrap the app's gater */
  wrappers: number
  /** the gater under every wrapper */
  base: ConnectionGater
}

/** peels the holdfast chains off the node's gater, counting them */
function unwrap (gater: ConnectionGater): Wrapping {
  let wrappers = 0
  let current: any = gater
  while (Object.hasOwn(current, CHAIN)) {
    wrappers++
    current = current[CHAIN].base
  }
  return { wrappers, base: current }
}

describe('the node\'s gater chain across restarts (Node, 127.0.0.1)', () => {
  let nodes: HoldfastRealmNode[] = []

  afterEach(async () => {
    await stopAll(nodes)
    nodes = []
  })

  it('a stop/start/stop/start cycle leaves exactly one gater wrapper, with the connection manager\'s and the realm\'s layers once each', async () => {
    const node = await createHoldfastNode({ realm: { psk: PSK }, preset: 'test', listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(node)
    // the node's components: libp2p keeps them on the node, where the services' gater layers live
    const components = (node as unknown as { components: { connectionGater: ConnectionGater } }).components
    const started = unwrap(components.connectionGater)
    expect(started.wrappers).to.equal(1)
    const appGater = started.base
    const layers = ['@holdfast/connection-manager', '@holdfast/realm']
    expect(gaterLayers(components)).to.have.members(layers)

    for (let cycle = 0; cycle < 2; cycle++) {
      await node.stop()
      expect(unwrap(components.connectionGater)).to.deep.equal({ wrappers: 0, base: appGater }, `stopped, cycle ${cycle}`)
      expect(gaterLayers(components)).to.deep.equal([])
      await node.start()
      const again = unwrap(components.connectionGater)
      expect(again.wrappers).to.equal(1, `started, cycle ${cycle}`)
      expect(again.base).to.equal(appGater)
      expect(gaterLayers(components)).to.have.members(layers).and.to.have.lengthOf(2)
    }
  })
})
