/** The default adapters in a browser (selected by package.json's `browser` field) */

import { browserAdapter } from './browser.ts'
import type { NetworkAdapter } from '../index.ts'

export function autoAdapters (): NetworkAdapter[] {
  return [browserAdapter()]
}
