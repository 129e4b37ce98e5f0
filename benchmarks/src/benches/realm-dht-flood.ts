/**
 * realm-dht-flood (the realm DHT as a members-only resource): a member node that runs
 * the realm DHT the way `holdfast relay` builds it (a kad-dht server on the realm's own protocol
 * with the realm record validator and selector), wrapped in `membersOnly`, takes a flood of
 * PUT_VALUEs from outsiders: ~15 KiB realm records, each validly signed by a throw-away
 * identity. Measured on the member: heap growth after forced GCs, and the records it stored
 * (must be 0 from outsiders).
 *
 * Baseline, same run: the same flood against the same DHT without `membersOnly`, which validates
 * and stores every record. The member runs in a fresh process for each run
 * (realm-dht-flood-member.ts) and the outsiders in one more (realm-dht-flood-outsiders.ts), so a
 * reading holds one member and nothing else.
 */

import { deriveKeys, DHT_NAMESPACE } from '@holdfast/realm'
import { benchmark, named, round } from '../harness.ts'
import { result } from '../result.ts'
import { Child } from '../setup.ts'
import type { Gate, Measured, MeasureRequest, Started, StartRequest } from './realm-dht-flood-member.ts'
import type { FloodReport, FloodRequest, PrepareRequest } from './realm-dht-flood-outsiders.ts'
import type { BenchContext } from '../harness.ts'
import type { RealmStats } from '@holdfast/realm'

/** hex, 32 bytes */
const PSK = '2f'.repeat(32)
/** bytes of each record's sealed payload: the record is ~15 KiB, under the realm's 16 KiB record cap */
const SEALED_BYTES = 15 * 1024
/**
 * How the outsiders flood: 4 plain nodes with 8 attempts in flight each (kad-dht accepts 32
 * inbound streams per connection), each attempt given 10 s
 */
const FLOOD = { outsiders: 4, concurrency: 8, attemptTimeout: 10_000 } as const
/**
 * The member's realm: authTimeout 1 s, short so a gated run does not idle (the default is 5 s,
 * see notes); the first reading 1.5 s after start, past kad-dht's first self query (1 s after start)
 */
const MEMBER = { psk: PSK, authTimeout: 1_000, settleAfterStart: 1_500 } as const
/**
 * ms after the flood before the `settled` reading (full runs only): past libp2p's 10 s inbound
 * protocol-negotiation timer, which each inbound stream arms and which keeps it reachable until
 * it fires
 */
const SETTLE_AFTER_FLOOD = 11_000
/**
 * the member process's flags: forced GCs, and no bytecode flushing. V8 drops the bytecode of
 * functions unused for a while during GCs; with it on, the same run read up to 4.5 MB lower one
 * time in five (a 3.5 MB large object went with it), whatever the flood did. With it off the
 * readings agree within 0.3 MB, and the growth can only be larger (nothing flushed is credited)
 */
const MEMBER_FLAGS = ['--expose-gc', '--no-flush-bytecode']
/** MB (2^20 bytes); the target: growth under the flood with the gate */
const TARGET_GROWTH_MB = 5
const MB = 2 ** 20

interface RunResult {
  name: Gate
  role: 'holdfast' | 'baseline'
  exclusive: boolean
  /** heapUsed + arrayBuffers growth from before the flood to just after it, MB (2^20 bytes) */
  totalGrowthMB: number
  heapUsedGrowthMB: number
  arrayBuffersGrowthMB: number
  /** full runs: the same growth 11 s later (what the flood left for good) */
  settledGrowthMB?: number
  /** heapUsed growth by V8 heap space (spaces that moved by 0.01 MB or more): code and trusted are compiled code and bytecode */
  spaceGrowthMB: Record<string, number>
  storedFromOutsiders: number
  storedOwn: number
  flood: Omit<FloodReport, 'type'>
  /** the member's realm counters after the run */
  accessDenied: number
  connectionsRejected: RealmStats['connectionsRejected']
  authFailures: RealmStats['authFailures']
}

const mb = (bytes: number): number => round(bytes / MB, 3)

async function floodOnce (gate: Gate, outsiders: Child, bound: number, settleAfterFlood: number, ctx: BenchContext): Promise<RunResult> {
  const member = new Child('./realm-dht-flood-member.ts', import.meta.url, MEMBER_FLAGS)
  try {
    const start: StartRequest = { type: 'start', gate, ...MEMBER }
    const started = await member.ask<Started>(start, 30_000)
    const request: FloodRequest = { type: 'flood', ...FLOOD, peer: started.peer, addrs: started.addrs, protocol: started.protocol, bound }
    const { type, ...flood } = await outsiders.ask<FloodReport>(request, bound + FLOOD.attemptTimeout + 30_000)
    void type
    const measure: MeasureRequest = { type: 'measure', settle: settleAfterFlood }
    const measured = await member.ask<Measured>(measure, settleAfterFlood + 30_000)
    const { before } = started
    const { after, settled, stored, stats } = measured
    const total = (m: typeof before): number => m.heapUsed + m.arrayBuffers
    const run: RunResult = {
      name: gate,
      role: gate === 'plain-kad-dht' ? 'baseline' : 'holdfast',
      exclusive: gate === 'members-only-exclusive',
      totalGrowthMB: mb(total(after) - total(before)),
      heapUsedGrowthMB: mb(after.heapUsed - before.heapUsed),
      arrayBuffersGrowthMB: mb(after.arrayBuffers - before.arrayBuffers),
      ...(settled == null ? {} : { settledGrowthMB: mb(total(settled) - total(before)) }),
      spaceGrowthMB: Object.fromEntries(Object.keys(after.spaces)
        .map(space => [space, mb(after.spaces[space] - (before.spaces[space] ?? 0))] as const)
        .filter(([, growth]) => Math.abs(growth) >= 0.01)),
      storedFromOutsiders: stored.others,
      storedOwn: stored.own,
      flood: { ...flood, ms: round(flood.ms, 4) },
      accessDenied: stats.accessDenied,
      connectionsRejected: stats.connectionsRejected,
      authFailures: stats.authFailures
    }
    ctx.log(`${gate}: ${flood.attempts} attempts in ${Math.round(flood.ms)} ms (${flood.answered} answered; failed ${JSON.stringify(flood.failures)}${flood.skipped > 0 ? `; ${flood.skipped} not made` : ''}); growth ${run.totalGrowthMB} MB (heapUsed ${run.heapUsedGrowthMB}, arrayBuffers ${run.arrayBuffersGrowthMB}${run.settledGrowthMB == null ? '' : `; ${run.settledGrowthMB} MB after 11 s`}); stored ${stored.others} from outsiders; the realm refused ${stats.accessDenied} streams, closed ${JSON.stringify(stats.connectionsRejected)}`)
    return run
  } finally {
    await member.stop()
  }
}

export const realmDhtFlood = benchmark({
  name: 'realm-dht-flood',
  description: 'member heap and stored records under a flood of ~15 KiB signed PUT_VALUEs from outsiders: membersOnly(kad-dht) (exclusive false, then true) vs the same kad-dht without membersOnly',
  // bound: ms the flood may take; settleAfterFlood: see SETTLE_AFTER_FLOOD (no settled reading in quick runs)
  sizes: { count: [1_000, 10_000], bound: [20_000, 90_000], settleAfterFlood: [0, SETTLE_AFTER_FLOOD] },
  async run (ctx, { count, bound, settleAfterFlood }) {
    const realmId = deriveKeys(PSK).realmId
    const outsiders = new Child('./realm-dht-flood-outsiders.ts', import.meta.url)
    const runs: RunResult[] = []
    try {
      const prepared = performance.now()
      const prepare: PrepareRequest = { type: 'prepare', realmId, count, sealedBytes: SEALED_BYTES }
      await outsiders.ask(prepare, 120_000)
      ctx.log(`${count} signed records prepared in ${Math.round(performance.now() - prepared)} ms`)
      for (const gate of ['members-only', 'members-only-exclusive', 'plain-kad-dht'] as Gate[]) {
        runs.push(await floodOnce(gate, outsiders, bound, settleAfterFlood, ctx))
      }
    } finally {
      await outsiders.stop()
    }
    const gated = named(runs, 'members-only')
    const exclusive = named(runs, 'members-only-exclusive')
    const base = named(runs, 'plain-kad-dht')
    return result(ctx, {
      unit: 'MB',
      value: gated.totalGrowthMB,
      statistic: 'growth of the member process\'s heapUsed + arrayBuffers (MB = 2^20 bytes, after forced GCs) from before the flood to just after it, membersOnly(kad-dht) with exclusive: false',
      baseline: { name: 'plain-kad-dht', value: base.totalGrowthMB, heapUsedGrowthMB: base.heapUsedGrowthMB, storedFromOutsiders: base.storedFromOutsiders, measured: true },
      metrics: {
        heapUsedGrowthMB: gated.heapUsedGrowthMB,
        arrayBuffersGrowthMB: gated.arrayBuffersGrowthMB,
        storedFromOutsiders: gated.storedFromOutsiders,
        exclusiveGrowthMB: exclusive.totalGrowthMB,
        exclusiveStoredFromOutsiders: exclusive.storedFromOutsiders,
        attempts: count
      },
      targets: [
        { metric: 'value', atMost: TARGET_GROWTH_MB },
        { metric: 'exclusiveGrowthMB', atMost: TARGET_GROWTH_MB },
        { metric: 'storedFromOutsiders', atMost: 0, unit: 'records' },
        { metric: 'exclusiveStoredFromOutsiders', atMost: 0, unit: 'records' }
      ],
      target: `<= ${TARGET_GROWTH_MB} MB growth and 0 records stored from outsiders, with membersOnly (exclusive false and true)`,
      samples: gated.flood.attempts,
      extra: {
        cases: runs,
        comparisons: [
          { name: 'plain-kad-dht per 1,000 records (this run)', value: round(base.totalGrowthMB / (count / 1_000), 3), unit: 'MB', measured: true },
          { name: 'issue report: 1,000 records without a gate', value: 14.9, unit: 'MB', measured: false }
        ],
        notes: [
          `The member: TCP 127.0.0.1, gossipsub, realm (authTimeout ${MEMBER.authTimeout} ms instead of 5,000 ms, so each outsider's first streams wait less for its auth to fail), and kad-dht as holdfast relay builds the realm DHT: protocol /holdfast/realm/<realmId>/kad/1.0.0, clientMode false, passthroughMapper, allowQueryWithZeroPeers, the realm validator and selector under '${DHT_NAMESPACE}'. Each run starts a fresh member in a fresh Node process (--expose-gc), so no earlier run's node, still reachable from a libp2p timer, colours its readings; the runs go members-only, members-only-exclusive, then the baseline.`,
          `The flood: ${count} PUT_VALUE attempts in total from ${FLOOD.outsiders} plain libp2p nodes (no realm, no DHT service, fresh identities each run) in another process, ${FLOOD.concurrency} in flight per node, one message per stream on the realm kad protocol (dialProtocol, so a closed connection is redialled). Each carries a realm record /${DHT_NAMESPACE}/<realmId>/<throw-away peer ID> with ${SEALED_BYTES} random sealed bytes, a seq and an Ed25519 signature by that peer's key: valid for realmDhtValidator, so a DHT without the gate stores every one. Failed attempts are counted by error name in cases[].flood.failures.`,
          `Memory: process.memoryUsage() in the member's process after four global.gc() passes, ${MEMBER.settleAfterStart} ms after start (past kad-dht's first self query) and just after the flood (the outsiders stopped, the member saw every connection close). value = heapUsed + arrayBuffers growth: a stored 15 KiB Uint8Array keeps its bytes outside the V8 heap, in arrayBuffers, so heapUsed alone would not show the records; both parts are reported. Full runs read once more ${SETTLE_AFTER_FLOOD / 1000} s later (settledGrowthMB), after libp2p's 10 s per-stream protocol-negotiation timers have let go of the last streams. The growth includes what a cold process compiles on its first flood: cases[].spaceGrowthMB splits heapUsed by V8 space, and code + trusted (machine code and bytecode) are most of a gated run's growth.`,
          `The member process runs with ${MEMBER_FLAGS.join(' ')}: with bytecode flushing on, V8 dropped the bytecode of functions unused for a while at some GC, and one reading in five came out ~4.5 MB lower (a 3.5 MB large object went with it) whatever the flood did; with it off, repeated runs agree within 0.3 MB, and nothing flushed is credited to the gate.`,
          'members-only (value): membersOnly(kadDHT(...)) with realm exclusive: false, so the outsiders\' connections stay and every attempt reaches the gate, which aborts the stream before kad-dht reads it. Each outsider\'s first streams wait for its auth to fail (authTimeout), then every stream is refused at once.',
          'members-only-exclusive: the same with the default exclusive: true: each outsider is closed at authTimeout and then denied for a backoff, so its later attempts fail at the gater (the redial is refused after the noise handshake) and never reach the DHT.',
          'plain-kad-dht (baseline): the same kadDHT(...) without membersOnly, the realm service unchanged (exclusive: false): every valid record is validated and stored in the member\'s in-memory datastore (no budget).',
          'storedFromOutsiders counts the realm records in the member\'s datastore other than its own (the member puts its own record on start).',
          'inboundConnectionThreshold is lifted on the member: libp2p drops more than 5 inbound connections a second from one host, and every outsider is 127.0.0.1; with it, every redial of the exclusive run reaches the realm gate.'
        ]
      }
    })
  }
})
