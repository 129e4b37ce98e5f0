/**
 * `membersOnly(factory)`: runs any libp2p service (the realm's kad-dht above all) so that only
 * realm members and named infrastructure reach it. The service is handed a registrar whose
 * protocol handlers refuse streams from anyone else and whose topologies see only them, and a
 * datastore whose record and provider stores are budgeted. The service itself is unchanged.
 */

import { CAPABILITIES, findService } from '@holdfast/interface'
import { MAX_DHT_PROVIDERS, MAX_DHT_RECORDS } from './constants.ts'
import { RealmAccessDeniedError, RealmBudgetError } from './errors.ts'
import type { Connection, PeerId, Stream, StreamHandler, Topology } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import type { Datastore, Key } from 'interface-datastore'

export interface MembersOnlyInit {
  /**
   * records (`/record/` keys, kad-dht's PUT_VALUE store) kept at most, all peers together
   *
   * @default 4096
   */
  maxRecords?: number
  /**
   * provider records (`/provider/` keys) kept at most, all peers together
   *
   * @default 4096
   */
  maxProviders?: number
}

/** What the gate asks of the realm service (found by its capability on the node) */
export interface RealmAccess {
  /** an authenticated member on this connection (waiting for the auth under way), or named infrastructure */
  admits(connection: Connection): Promise<boolean>
  /** counts a refusal */
  accessDenied(peer: PeerId, resource: string): void
}

export function membersOnly<T> (factory: (components: any) => T, init: MembersOnlyInit = {}): (components: any) => T {
  return (components: any) => {
    const access = (): RealmAccess | undefined => findService<RealmAccess>(components, CAPABILITIES.realm)
    const registrar = gatedRegistrar(components.registrar, access)
    const datastore = budgetedDatastore(components.datastore, init.maxRecords ?? MAX_DHT_RECORDS, init.maxProviders ?? MAX_DHT_PROVIDERS)
    return factory(new Proxy(components, {
      get (target, prop, receiver) {
        if (prop === 'registrar') {
          return registrar
        }
        if (prop === 'datastore') {
          return datastore
        }
        return Reflect.get(target, prop, receiver)
      }
    }))
  }
}

/** fails closed: with no realm service on the node, nobody is admitted */
async function admitted (access: () => RealmAccess | undefined, connection: Connection, resource: string): Promise<boolean> {
  const realm = access()
  if (realm != null && await realm.admits(connection)) {
    return true
  }
  realm?.accessDenied(connection.remotePeer, resource)
  return false
}

function gatedRegistrar (registrar: Registrar, access: () => RealmAccess | undefined): Registrar {
  const handle: Registrar['handle'] = async (protocol, handler, opts) => {
    const gated: StreamHandler = async (stream: Stream, connection: Connection) => {
      if (await admitted(access, connection, protocol)) {
        await handler(stream, connection)
        return
      }
      stream.abort(new RealmAccessDeniedError())
    }
    await registrar.handle(protocol, gated, opts)
  }
  const register: Registrar['register'] = async (protocol, topology: Topology) => registrar.register(protocol, {
    ...topology,
    onConnect: topology.onConnect == null
      ? undefined
      : (peer, connection) => {
          void admitted(access, connection, protocol).then(ok => {
            if (ok && connection.status === 'open') {
              topology.onConnect?.(peer, connection)
            }
          })
        }
  })
  return delegate(registrar, { handle, register })
}

/** the datastore, with new `/record/` and `/provider/` keys refused past their budgets */
function budgetedDatastore (datastore: Datastore, maxRecords: number, maxProviders: number): Datastore {
  const stores = [
    { marker: '/record/', max: maxRecords, keys: new Set<string>() },
    { marker: '/provider/', max: maxProviders, keys: new Set<string>() }
  ]
  const storeOf = (key: Key): typeof stores[number] | undefined => {
    const text = key.toString()
    return stores.find(store => text.includes(store.marker))
  }
  const put: Datastore['put'] = async (key, value, opts) => {
    const store = storeOf(key)
    const text = key.toString()
    if (store != null && !store.keys.has(text) && store.keys.size >= store.max) {
      throw new RealmBudgetError(`The realm DHT keeps at most ${store.max} ${store.marker.slice(1, -1)} entries`)
    }
    const stored = await datastore.put(key, value, opts)
    store?.keys.add(text)
    return stored
  }
  const del: Datastore['delete'] = async (key, opts) => {
    storeOf(key)?.keys.delete(key.toString())
    await datastore.delete(key, opts)
  }
  return delegate(datastore, { put, delete: del })
}

/** `target` with some methods replaced; every other property read from (and bound to) the target */
function delegate<T extends object> (target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get (t, prop) {
      if (Object.hasOwn(overrides, prop)) {
        return overrides[prop as keyof T]
      }
      const value = Reflect.get(t, prop, t)
      return typeof value === 'function' ? value.bind(t) : value
    }
  })
}
