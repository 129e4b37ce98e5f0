import { stopAll } from './nodes.ts'
import type { Introspectable } from '@holdfast/interface'
import type { Libp2p } from '@libp2p/interface'

/** The non-zero internal sizes of a service, except the ones named */
export function leftovers (service: Introspectable, except: string[] = []): Record<string, number> {
  return Object.fromEntries(Object.entries(service.internalSizes()).filter(([what, size]) => size !== 0 && !except.includes(what)))
}

/**
 * Throws when a service still holds per-peer entries, timers, listeners or anything else it
 * reports in `internalSizes()` (names in `except` are allowed to be non-zero, e.g. the node
 * listeners of a running service).
 */
export function expectNoLeaks (service: Introspectable, except: string[] = []): void {
  const left = leftovers(service, except)
  if (Object.keys(left).length > 0) {
    throw new Error(`service still holds ${JSON.stringify(left)}`)
  }
}

/**
 * Stops every node, then checks that the named service of each node that has it holds nothing
 * (`expectNoLeaks`, with the same `except`)
 */
export async function stopAndExpectNoLeaks (nodes: Array<Libp2p<any> | undefined>, service: string, except: string[] = []): Promise<void> {
  await stopAll(nodes)
  for (const node of nodes) {
    const introspectable = node?.services[service] as Introspectable | undefined
    if (introspectable != null) {
      expectNoLeaks(introspectable, except)
    }
  }
}
