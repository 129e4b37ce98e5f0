import { serviceCapabilities } from '@libp2p/interface'

/**
 * Finds another service of the node by the capability it declares, for services a holdfast
 * service uses only when present (the reconnector uses the broadcaster if there is one).
 * Required services are declared with `serviceDependencies` and read by key instead.
 *
 * libp2p's components object keys services by the name the app chose, which a service cannot
 * know; its `components` record (libp2p 3's `DefaultComponents`) is the only place that lists
 * them all. Call it from `start()` on, when every service has been constructed.
 */
export function findService<T> (components: object, capability: string): T | undefined {
  const all = (components as { components?: Record<string, unknown> }).components
  if (all == null || typeof all !== 'object') {
    return undefined
  }
  for (const service of Object.values(all)) {
    const capabilities = (service as { [serviceCapabilities]?: unknown } | null)?.[serviceCapabilities]
    if (Array.isArray(capabilities) && capabilities.includes(capability)) {
      return service as T
    }
  }
  return undefined
}

/** Every service of the node that declares `capability`, in the order the app listed them (see `findService`) */
export function findServices<T> (components: object, capability: string): T[] {
  const all = (components as { components?: Record<string, unknown> }).components
  if (all == null || typeof all !== 'object') {
    return []
  }
  return Object.values(all).filter(service => {
    const capabilities = (service as { [serviceCapabilities]?: unknown } | null)?.[serviceCapabilities]
    return Array.isArray(capabilities) && capabilities.includes(capability)
  }) as T[]
}
