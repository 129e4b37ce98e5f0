/** Nodes for the path selector's tests, on `@holdfast/test-utils` */

import { stopAndExpectNoLeaks } from '@holdfast/test-utils'
import type { Libp2p } from '@libp2p/interface'

/**
 * The nodes the tests of a suite start, in one array: after each test they are stopped, each of
 * `services` of theirs is checked to hold nothing (`internalSizes()` all zero), and the array
 * is emptied.
 */
export function nodesOfEachTest (...services: string[]): Array<Libp2p<any>> {
  const nodes: Array<Libp2p<any>> = []
  afterEach(async () => {
    for (const service of services) {
      await stopAndExpectNoLeaks(nodes, service)
    }
    nodes.length = 0
  })
  return nodes
}
