import type { Introspectable } from '@holdfast/interface'

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
