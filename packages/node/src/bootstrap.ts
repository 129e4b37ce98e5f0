/**
 * Dials the bootstrap peers the app names once the node has started. They are usually plain
 * libp2p nodes (a public DHT server, a go-libp2p bootstrap node): the realm keeps them as
 * infrastructure, and the node's rendezvous DHT meets the other members through them.
 */

import type { ComponentLogger, Logger, Startable } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface BootstrapComponents {
  connectionManager: ConnectionManager
  logger: ComponentLogger
}

class BootstrapDialer implements Startable {
  readonly [Symbol.toStringTag] = '@holdfast/node:bootstrap'
  private readonly components: BootstrapComponents
  private readonly peers: Multiaddr[]
  private readonly log: Logger
  private shutdown = new AbortController()

  constructor (components: BootstrapComponents, peers: Multiaddr[]) {
    this.components = components
    this.peers = peers
    this.log = components.logger.forComponent('holdfast:node:bootstrap')
  }

  start (): void {
    this.shutdown = new AbortController()
  }

  afterStart (): void {
    for (const peer of this.peers) {
      // an unreachable bootstrap peer must not fail the node: the others, or the relays, may do
      this.components.connectionManager.openConnection(peer, { signal: this.shutdown.signal }).catch(err => {
        this.log('bootstrap peer %a not reached: %e', peer, err)
      })
    }
  }

  stop (): void {
    this.shutdown.abort()
  }
}

export function bootstrapDialer (peers: Multiaddr[]): (components: BootstrapComponents) => Startable {
  return (components) => new BootstrapDialer(components, peers)
}
