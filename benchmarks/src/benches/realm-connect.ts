/**
 * realm-connect: `realm.connect(peerId)` on TCP loopback when the two members share
 * only a relay, vs a plain libp2p dial to the already known circuit address (the baseline, in
 * the same run). The realm connect resolves the address itself (member list / peer store) and
 * resolves only after the realm auth exchange, so the difference is the price of "connect by ID
 * = authenticated and able to carry streams".
 */

import { realm } from '@holdfast/realm'
import { disconnect, stopAll } from '@holdfast/test-utils'
import { relayServer } from '@holdfast/test-utils/infrastructure'
import { gossipsub } from '@libp2p/gossipsub'
import { benchmark, round, summarize } from '../harness.ts'
import { result } from '../result.ts'
import { UNTHROTTLED, behindRelay, memberAt } from '../setup.ts'
import type { Realm } from '@holdfast/realm'
import type { Libp2p } from '@libp2p/interface'

const PSK = new Uint8Array(32).fill(43)

type RealmNode = Libp2p<{ realm: Realm }>

const realmServices = (): { pubsub: ReturnType<typeof gossipsub>, realm: ReturnType<typeof realm> } => ({ pubsub: gossipsub(), realm: realm({ psk: PSK }) })

export const realmConnect = benchmark({
  name: 'realm-connect',
  description: 'realm.connect(peerId) through a relay on loopback (authenticated) vs a plain dial to the known circuit address',
  sizes: { runs: [20, 60] },
  async run (ctx, { runs }) {
    // the relay is a realm member too, so the two members can learn each other from it
    const relay = await relayServer({ services: realmServices(), config: { connectionManager: UNTHROTTLED } })
    const [a, b] = await Promise.all([behindRelay(relay, realmServices()), behindRelay(relay, realmServices())]) as unknown as RealmNode[]
    try {
      const circuit = b.getMultiaddrs().find(ma => ma.toString().includes('/p2p-circuit'))
      if (circuit == null) {
        throw new Error('b holds no reservation')
      }
      // a learns b is a member (they meet once), then keeps only what a realm member would know
      await a.dial(circuit)
      await memberAt(a, b.peerId)
      // both ends saw the disconnect, so the next run starts from nothing
      await disconnect(a, b)
      const realmMs: number[] = []
      const dialMs: number[] = []
      for (let i = 0; i < runs; i++) {
        let start = performance.now()
        const viaRealm = await a.services.realm.connect(b.peerId)
        realmMs.push(performance.now() - start)
        if (!viaRealm.remoteAddr.toString().includes('/p2p-circuit')) {
          throw new Error('realm.connect did not go through the relay')
        }
        await disconnect(a, b)
        start = performance.now()
        await a.dial(circuit)
        dialMs.push(performance.now() - start)
        await disconnect(a, b)
      }
      const ours = summarize(realmMs)
      const base = summarize(dialMs)
      ctx.log(`realm.connect p50 ${ours.p50.toFixed(1)} ms p95 ${ours.p95.toFixed(1)} ms; plain dial p50 ${base.p50.toFixed(1)} ms p95 ${base.p95.toFixed(1)} ms`)
      return result(ctx, {
        unit: 'ms',
        value: round(ours.p95, 3),
        statistic: 'p95 of realm.connect(peerId) until authenticated, through a relay on 127.0.0.1',
        baseline: { name: 'plain-dial-known-circuit', value: round(base.p95, 3), p50: round(base.p50, 3), measured: true },
        metrics: { p50: round(ours.p50, 3), p95: round(ours.p95, 3), max: round(ours.max, 3) },
        targets: [{ metric: 'p95', below: 250 }],
        samples: ours.samples,
        extra: {
          notes: [
            'Each run starts with no connection between the two members (both ends hung up); a, b and the relay run TCP on 127.0.0.1, a and b hold reservations on the relay and nothing else connects them.',
            'realm.connect resolves the address itself (peer store, else member list, else the shared relay) and resolves after the realm auth exchange (two round trips over the relayed connection); the baseline dials the circuit address the caller already knows and resolves when the connection is open, with no authentication.',
            'Runs alternate realm.connect and the plain dial, so both see the same machine state.',
            'inboundConnectionThreshold is lifted on all three nodes: libp2p drops more than 5 inbound connections a second from one host, and every relayed connection comes from the relay\'s 127.0.0.1.'
          ]
        }
      })
    } finally {
      await stopAll([a, b, relay])
    }
  }
})
