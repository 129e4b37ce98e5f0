/**
 * How a holdfast service finds another service of the same node, for those it uses only when
 * present (the reconnector uses the broadcaster if there is one). Required services are
 * declared with `serviceDependencies` and read by key instead.
 *
 * libp2p gives every service the same components object and lets it read another service only
 * by the key the app chose. So holdfast services register themselves against that object when
 * they are built (`registerService`), and are found by capability whatever their key. libp2p's
 * own services (ping, gossipsub, kad-dht, the relay server) are read under their usual keys
 * (`SERVICE_KEYS`). Nothing here reads libp2p's private list of components.
 */

import { serviceCapabilities } from '@libp2p/interface'

/** The keys under which a libp2p service is looked for, by the capability (or `toStringTag`) it declares */
export const SERVICE_KEYS: Readonly<Record<string, readonly string[]>> = {
  '@libp2p/ping': ['ping'],
  '@libp2p/pubsub': ['pubsub', 'gossipsub'],
  '@libp2p/kad-dht': ['dht', 'kadDHT', 'aminoDHT', 'lanDHT', 'rendezvous'],
  '@libp2p/circuit-relay-v2-server': ['relay', 'relayServer', 'circuitRelayServer']
}

// one registry per process, even with two copies of this package installed
const REGISTRY = Symbol.for('@holdfast/service-registry')

function registry (): WeakMap<object, Set<object>> {
  const global = globalThis as { [REGISTRY]?: WeakMap<object, Set<object>> }
  global[REGISTRY] ??= new WeakMap()
  return global[REGISTRY]
}

/** Makes `service` findable by capability to every service built from the same `components` */
export function registerService (components: object, service: object): void {
  const services = registry().get(components) ?? new Set()
  services.add(service)
  registry().set(components, services)
}

function declares (service: unknown, capability: string): boolean {
  if (service == null || typeof service !== 'object') {
    return false
  }
  const capabilities = (service as { [serviceCapabilities]?: unknown })[serviceCapabilities]
  return (Array.isArray(capabilities) && capabilities.includes(capability)) ||
    (service as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === capability
}

function read (components: object, key: string): unknown {
  try {
    // libp2p's components throw MissingServiceError for a key nobody set
    return (components as Record<string, unknown>)[key]
  } catch {
    return undefined
  }
}

/**
 * Every service of the node that declares `capability`: the registered holdfast services first,
 * then those under `keys`. Call it from `start()` on, when every service has been built.
 */
export function findServices<T> (components: object, capability: string, keys: readonly string[] = SERVICE_KEYS[capability] ?? []): T[] {
  const found = new Set<unknown>([...registry().get(components) ?? []].filter(service => declares(service, capability)))
  for (const key of keys) {
    const service = read(components, key)
    if (declares(service, capability)) {
      found.add(service)
    }
  }
  return [...found] as T[]
}

/** The first service of the node that declares `capability` (see `findServices`), or undefined */
export function findService<T> (components: object, capability: string, keys?: readonly string[]): T | undefined {
  return findServices<T>(components, capability, keys)[0]
}
