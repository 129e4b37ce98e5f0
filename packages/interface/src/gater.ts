/**
 * One chain of connection gates per node, shared by every holdfast service that gates.
 *
 * libp2p reads `components.connectionGater` at each checkpoint. A service that wrapped it on
 * its own would stack wrappers on every restart and, stopped out of order, leave another's
 * wrapper in place. Here the first layer replaces the node's gater with one chain that inherits
 * from it (so the app's own methods, `denyPeer()` and the like, still work), and every layer,
 * keyed by its owner, is added to or removed from that chain. The last layer removed puts the
 * app's gater back.
 */

import type { ConnectionGater } from '@libp2p/interface'

const CHAIN = Symbol.for('@holdfast/gater-chain')

/** the checkpoints a layer may implement: any layer that answers `true` denies */
const DENY_HOOKS = [
  'denyDialPeer', 'denyDialMultiaddr', 'denyInboundConnection', 'denyOutboundConnection',
  'denyInboundEncryptedConnection', 'denyOutboundEncryptedConnection', 'denyInboundUpgradedConnection',
  'denyOutboundUpgradedConnection', 'denyInboundRelayReservation', 'denyOutboundRelayedConnection',
  'denyInboundRelayedConnection'
] as const

type DenyHook = typeof DENY_HOOKS[number]

/** A layer: some of the deny checkpoints of a `ConnectionGater` (a hook may also throw a typed error) */
export type GaterLayer = Pick<ConnectionGater, DenyHook>

interface Chain {
  base: ConnectionGater
  layers: Map<string, GaterLayer>
}

/** what holds the node's gater: libp2p's components */
export interface GaterHost {
  connectionGater: ConnectionGater
}

function chainOf (gater: ConnectionGater): Chain | undefined {
  return (gater as { [CHAIN]?: Chain })[CHAIN]
}

function createChain (base: ConnectionGater): ConnectionGater {
  const chain: Chain = { base, layers: new Map() }
  const gater: ConnectionGater & { [CHAIN]?: Chain } = Object.create(base)
  gater[CHAIN] = chain
  for (const hook of DENY_HOOKS) {
    gater[hook] = async (...args: any[]) => {
      if ((await (base[hook] as any)?.call(base, ...args)) === true) {
        return true
      }
      for (const layer of [...chain.layers.values()]) {
        if ((await (layer[hook] as any)?.(...args)) === true) {
          return true
        }
      }
      return false
    }
  }
  return gater
}

/** Adds `owner`'s layer to the node's chain (replacing a layer of the same owner: a restart adds nothing) */
export function addGaterLayer (host: GaterHost, owner: string, layer: GaterLayer): void {
  if (chainOf(host.connectionGater) == null) {
    host.connectionGater = createChain(host.connectionGater)
  }
  chainOf(host.connectionGater)?.layers.set(owner, layer)
}

/** Removes `owner`'s layer; with none left, the app's own gater is back in place */
export function removeGaterLayer (host: GaterHost, owner: string): void {
  const chain = chainOf(host.connectionGater)
  if (chain == null) {
    return
  }
  chain.layers.delete(owner)
  if (chain.layers.size === 0) {
    host.connectionGater = chain.base
  }
}

/** the owners of the layers in the node's chain, in the order they are asked */
export function gaterLayers (host: GaterHost): string[] {
  return [...chainOf(host.connectionGater)?.layers.keys() ?? []]
}
