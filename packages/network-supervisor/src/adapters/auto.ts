/** The default adapters in Node; package.json's `browser` field swaps in auto.browser.ts for bundlers */

import { nodeAdapter } from './node.ts'
import type { NetworkAdapter } from '../index.ts'

export function autoAdapters (): NetworkAdapter[] {
  return [nodeAdapter()]
}
