/**
 * realm-connect (spec 06): `realm.connect(peerId)` on TCP loopback when the two members share
 * only a relay, vs a plain libp2p dial to the already known circuit address (the baseline, in
 * the same run). The realm connect resolves the address itself (member list / peer store) and
 * resolves only after the realm auth exchange, so the difference is the price of "connect by ID
 * = authenticated and able to carry streams".
 */

import { realm } from '@holdfast/realm'
import { createNode, disconnect, stopAll } from '@holdfast/test-utils'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { tcp } from '@libp2p/tcp'
import { round, summarize } from '../harness.ts'
import type { BenchContext, Benchmark, BenchResult } from '../harness.ts'
import type { Realm } from '@holdfast/realm'
import type { Libp2p } from '@libp2p/interface'

const NAME = 'realm-connect'
const PSK = new Uint8Array(32).fill(43)

type RealmNode = Libp2p<{ realm: Realm }>

/**
 * libp2p drops a host's inbound connections above 5 a second (the dialer then sees a misleading
 * EncryptionFailedError timeout); every relayed connection comes from the relay's 127.0.0.1,
 * and this script opens one every few ms.
 */
const UNTHROTTLED = { inboundConnectionThreshold: Number.MAX_SAFE_INTEGER }

async function member (relay?: Libp2p<any>): Promise<RealmNode> {
  return createNode({
    transport: 'tcp',
    services: {
      pubsub: gossipsub(),
      realm: realm({ psk: PSK }),
      ...(relay == null ? { relay: circuitRelayServer({ reservations: { applyDefaultLimit: false } }) } : {})
    },
    config: relay == null
      ? { connectionMonitor: { enabled: false }, connectionManager: UNTHROTTLED }
      : {
          addresses: { listen: [`${relay.getMultiaddrs()[0].toString()}/p2p-circuit`] },
          transports: [tcp(), circuitRelayTransport()],
          connectionMonitor: { enabled: false },
          connectionManager: UNTHROTTLED
        }
  }) as unknown as Promise<RealmNode>
}

/** both ends saw the disconnect, so the next run starts from nothing */
async function closeAll (a: Libp2p<any>, b: Libp2p<any>): Promise<void> {
  await disconnect(a, b)
}

export const realmConnect: Benchmark = {
  name: NAME,
  description: 'realm.connect(peerId) through a relay on loopback (authenticated) vs a plain dial to the known circuit address',
  async run (ctx: BenchContext): Promise<BenchResult> {
    const runs = ctx.quick ? 20 : 60
    const relay = await member()
    const [a, b] = await Promise.all([member(relay), member(relay)])
    try {
      const circuit = b.getMultiaddrs().find(ma => ma.toString().includes('/p2p-circuit'))
      if (circuit == null) {
        throw new Error('b holds no reservation')
      }
      // a learns b is a member (they meet once), then keeps only what a realm member would know
      await a.dial(circuit)
      await new Promise<void>(resolve => {
        const check = (): void => {
          if (a.services.realm.isMember(b.peerId)) {
            a.services.realm.removeEventListener('member:joined', check)
            resolve()
          }
        }
        a.services.realm.addEventListener('member:joined', check)
        check()
      })
      await closeAll(a, b)
      const realmMs: number[] = []
      const dialMs: number[] = []
      for (let i = 0; i < runs; i++) {
        let start = performance.now()
        const viaRealm = await a.services.realm.connect(b.peerId)
        realmMs.push(performance.now() - start)
        if (!viaRealm.remoteAddr.toString().includes('/p2p-circuit')) {
          throw new Error('realm.connect did not go through the relay')
        }
        await closeAll(a, b)
        start = performance.now()
        await a.dial(circuit)
        dialMs.push(performance.now() - start)
        await closeAll(a, b)
      }
      const ours = summarize(realmMs)
      const base = summarize(dialMs)
      ctx.log(`realm.connect p50 ${ours.p50.toFixed(1)} ms p95 ${ours.p95.toFixed(1)} ms; plain dial p50 ${base.p50.toFixed(1)} ms p95 ${base.p95.toFixed(1)} ms`)
      return {
        name: NAME,
        unit: 'ms',
        value: round(ours.p95, 3),
        statistic: 'p95 of realm.connect(peerId) until authenticated, through a relay on 127.0.0.1',
        baseline: { name: 'plain-dial-known-circuit', value: round(base.p95, 3), p50: round(base.p50, 3), measured: true },
        ratio: round(ours.p95 / base.p95, 3),
        target: 'p95 < 250 ms',
        targets: [{ metric: 'value', op: '<', threshold: 250, unit: 'ms' }],
        pass: ours.p95 < 250,
        samples: ours.samples,
        env: ctx.env,
        p50: round(ours.p50, 3),
        p95: round(ours.p95, 3),
        max: round(ours.max, 3),
        notes: [
          'Each run starts with no connection between the two members (both ends hung up); a, b and the relay run TCP on 127.0.0.1, a and b hold reservations on the relay and nothing else connects them.',
          'realm.connect resolves the address itself (peer store, else member list, else the shared relay) and resolves after the realm auth exchange (two round trips over the relayed connection); the baseline dials the circuit address the caller already knows and resolves when the connection is open, with no authentication.',
          'Runs alternate realm.connect and the plain dial, so both see the same machine state.',
          'inboundConnectionThreshold is lifted on all three nodes: libp2p drops more than 5 inbound connections a second from one host, and every relayed connection comes from the relay\'s 127.0.0.1.'
        ]
      }
    } finally {
      await stopAll([a, b, relay])
    }
  }
}
