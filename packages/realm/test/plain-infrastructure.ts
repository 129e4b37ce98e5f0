/**
 * DHT clients that reach others only through infrastructure the realm does not own (see
 * `@holdfast/test-utils/infrastructure`).
 */

import { createNode } from '@holdfast/test-utils'
import { kad } from '@holdfast/test-utils/infrastructure'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { tcp } from '@libp2p/tcp'
import type { DhtNode } from '@holdfast/test-utils/infrastructure'
import type { Libp2p } from '@libp2p/interface'

/**
 * A DHT client that can dial circuits. Given a relay, it listens only on a reservation there, as
 * a member behind NAT would: the relay is the only way in.
 */
export async function member (relay?: Libp2p, dht = kad({ clientMode: true })): Promise<DhtNode> {
  const listen = relay == null ? ['/ip4/127.0.0.1/tcp/0'] : [`${relay.getMultiaddrs()[0].toString()}/p2p-circuit`]
  return createNode({ transport: 'tcp', services: { dht }, config: { addresses: { listen }, transports: [tcp(), circuitRelayTransport()] } }) as Promise<DhtNode>
}
