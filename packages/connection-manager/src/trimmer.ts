/**
 * Trimming: when to trim (above `highWater`, once per silence period), who goes (the plan of
 * policy.ts), and closing them. One trim runs at a time.
 */

import { checkOptions } from '@holdfast/interface'
import { hasStreams, streamsOf } from './peer-table.ts'
import { autoTrimDue, defaultScore, IN_GRACE, partsOf, planTrim, PROTECTED, scoreBonus, sortClosing, TRIMMABLE, trimTarget } from './policy.ts'
import type { ConnectionManagerEventType } from './index.ts'
import type { PeerEntry, PeerTable } from './peer-table.ts'
import type { PlanPeers, PlanResult, Settings } from './policy.ts'
import type { Tags } from './tags.ts'
import type { Clock, CloseReason, HoldfastEvents, ScoreFn, TrackedTimers, TrimPlan, TrimReport } from '@holdfast/interface'
import type { AbortOptions, Counter, Logger, PeerId } from '@libp2p/interface'

/** How the parts of the manager report what they did */
export interface Announcer {
  emit<K extends ConnectionManagerEventType>(type: K, detail: HoldfastEvents[K]): void
  /** whether an event of that type reaches anyone, so a trim of thousands of peers builds none for nobody */
  announces(type: ConnectionManagerEventType): boolean
  /** counts connections the manager started closing */
  closed(reason: CloseReason, connections: number): void
}

export interface TrimmerInit {
  table: PeerTable
  tags: Tags
  clock: Clock
  timers: TrackedTimers
  log: Logger
  score: ScoreFn
  settings(): Settings
  isStarted(): boolean
  announcer: Announcer
  trimsMetric?: Counter
}

interface Plan {
  peers: PlanPeers
  entries: PeerEntry[]
  tagSums: Float64Array
  result: PlanResult
  connections: number
  target: number
}

export class Trimmer {
  private readonly init: TrimmerInit
  private timer: unknown
  private lastTrimAt: number | undefined
  private trimming: Promise<TrimReport> | undefined
  /** an automatic trim was due while another trim ran */
  private autoTrimPending = false
  trims = 0
  lastTrim: TrimReport | undefined

  constructor (init: TrimmerInit) {
    this.init = init
  }

  async trim (opts?: AbortOptions): Promise<TrimReport> {
    const options = checkOptions(opts)
    options.signal?.throwIfAborted()
    return this.enqueue('manual', options)
  }

  explain (): TrimPlan {
    const { peers, entries, tagSums, result, connections, target } = this.plan(() => {})
    return {
      mode: this.init.settings().trimMode,
      connections,
      target,
      close: inClosingOrder(peers, result).map(i => {
        const entry = entries[i]
        return { peer: entry.peer, score: peers.scores[i], parts: partsOf(tagSums[i], entry.outbound, streamsOf(entry)), connections: peers.connections[i], firstSeen: entry.firstSeen }
      }),
      after: result.after,
      shortfall: result.shortfall,
      protectedPeers: result.protectedPeers,
      gracePeers: result.gracePeers
    }
  }

  /** Starts an automatic trim now, or arms the one timer for when the silence period ends */
  maybeAutoTrim (): void {
    if (!this.init.isStarted()) {
      return
    }
    const { highWater, silencePeriod } = this.init.settings()
    const due = autoTrimDue(this.init.table.live, highWater, this.init.clock.now(), this.lastTrimAt, silencePeriod)
    if (due === 'never') {
      this.clearTimer()
      return
    }
    if (due !== 'now') {
      this.armTimer(due)
      return
    }
    if (this.trimming != null) {
      this.autoTrimPending = true
      return
    }
    this.enqueue('auto').catch(err => { this.init.log.error('automatic trim failed - %e', err) })
  }

  /** The limits changed: the timer armed for the old ones goes, and the new ones are checked now */
  restart (): void {
    this.clearTimer()
    this.maybeAutoTrim()
  }

  /** Connections went: a timer waiting to trim is not needed at or below highWater */
  connectionsGone (): void {
    if (this.init.table.live <= this.init.settings().highWater) {
      this.clearTimer()
    }
  }

  /** Waits for the trim under way; then no timer is left (a trim that ends may arm one) */
  async stop (): Promise<void> {
    await this.trimming?.catch(() => {})
    this.clearTimer()
  }

  /**
   * Who a trim closes now: the connected peers as columns (row `i` is `entries[i]`), and the
   * rows to close in order, each handed to `onChoose` when `planTrim` chooses it. With the
   * default score nothing is allocated per peer: the score is summed straight from the entry,
   * first without the streams bonus (a lower bound), which `planTrim` completes only for the
   * peers it is about to choose. A trim then reads each closed peer's connections once, to score
   * it and to start closing it, rather than once cold in the plan and again in a close loop.
   */
  private plan (onChoose: (entry: PeerEntry, row: number) => void): Plan {
    const { table, tags, clock, score } = this.init
    const settings = this.init.settings()
    const now = clock.now()
    const size = table.size
    const keys: string[] = []
    const peers: PlanPeers = { keys, scores: new Float64Array(size), firstSeen: new Float64Array(size), connections: new Uint32Array(size), status: new Uint8Array(size), bounded: score === defaultScore ? new Uint8Array(size) : undefined }
    const entries: PeerEntry[] = []
    const tagSums = new Float64Array(size)
    let n = 0
    for (const entry of table.values()) {
      if (entry.open === 0) {
        continue
      }
      const tagSum = tags.tagSum(entry, now)
      tagSums[n] = tagSum
      if (peers.bounded !== undefined) {
        peers.scores[n] = tagSum + scoreBonus(entry.outbound, 0)
        peers.bounded[n] = 1
      } else {
        peers.scores[n] = tags.describe(entry, now, settings.gracePeriod, score).score
      }
      peers.firstSeen[n] = entry.firstSeen
      peers.connections[n] = entry.open
      peers.status[n] = statusOf(entry, now, settings.gracePeriod)
      keys.push(entry.key)
      entries.push(entry)
      n++
    }
    if (n < size) {
      peers.scores = peers.scores.subarray(0, n)
      peers.firstSeen = peers.firstSeen.subarray(0, n)
      peers.connections = peers.connections.subarray(0, n)
      peers.status = peers.status.subarray(0, n)
      peers.bounded = peers.bounded?.subarray(0, n)
    }
    const connections = table.live
    const target = trimTarget(settings)
    const result = planTrim(peers, connections, target, {
      exactScore: row => peers.scores[row] + (hasStreams(entries[row]) ? scoreBonus(0, 1) : 0),
      onChoose: row => { onChoose(entries[row], row) }
    })
    return { peers, entries, tagSums, result, connections, target }
  }

  /** Trims run one at a time: a trim planned while another is closing would count those twice */
  private async enqueue (trigger: TrimReport['trigger'], opts: AbortOptions = {}): Promise<TrimReport> {
    const previous = this.trimming ?? Promise.resolve()
    const run = previous.catch(() => {}).then(async () => this.run(trigger, opts))
    this.trimming = run
    try {
      return await run
    } finally {
      if (this.trimming === run) {
        this.trimming = undefined
        if (this.autoTrimPending) {
          this.autoTrimPending = false
          this.maybeAutoTrim()
        }
      }
    }
  }

  private async run (trigger: TrimReport['trigger'], opts: AbortOptions): Promise<TrimReport> {
    opts.signal?.throwIfAborted()
    const { table, clock, announcer, log } = this.init
    const startedAt = clock.now()
    this.lastTrimAt = startedAt
    this.clearTimer()
    announcer.emit('trim:started', { connections: table.live })
    const closes = new PendingCloses()
    // each close starts as its peer is chosen; the peers are announced, in closing order, once
    // the closes have settled, so ordering them never delays a close
    const started = new Uint32Array(table.size)
    const { peers, entries, result, connections, target } = this.plan((entry, row) => {
      started[row] = this.startClosing(entry, closes)
    })
    if (closes.started > 0) {
      announcer.closed('trim', closes.started)
    }
    await closes.settled()

    const closed: PeerId[] = []
    const announce = announcer.announces('connection:closed-by-manager')
    for (const row of inClosingOrder(peers, result)) {
      const { peer } = entries[row]
      closed.push(peer)
      if (announce && started[row] > 0) {
        announcer.emit('connection:closed-by-manager', { peer, reason: 'trim' })
      }
    }

    const report: TrimReport = {
      trigger,
      mode: this.init.settings().trimMode,
      before: connections,
      after: table.live,
      target,
      closed,
      closedConnections: closes.started,
      shortfall: result.shortfall,
      durationMs: clock.now() - startedAt
    }
    this.trims++
    this.lastTrim = report
    this.init.trimsMetric?.increment()
    log('%s trim closed %d peers (%d connections): %d -> %d, target %d, shortfall %d', trigger, closed.length, report.closedConnections, report.before, report.after, report.target, report.shortfall)
    announcer.emit('trim:completed', { closed, before: report.before, after: report.after, durationMs: report.durationMs, shortfall: report.shortfall })
    if (result.gracePeers > 0) {
      this.scheduleGraceRecheck()
    }
    return report
  }

  /** Starts closing every connection of a peer not already closing (counted in `closes`); returns how many */
  private startClosing (entry: PeerEntry, closes: PendingCloses): number {
    const { conns } = entry
    let count = 0
    for (let i = 0; i < conns.length; i++) {
      if (!conns[i].closing) {
        this.init.table.closeConnection(entry, conns[i], closes.settle, this.init.log)
        count++
      }
    }
    closes.add(count)
    return count
  }

  /** Still above highWater because of peers in grace: look again when the first grace ends */
  private scheduleGraceRecheck (): void {
    const { table, clock } = this.init
    const { highWater, gracePeriod, silencePeriod } = this.init.settings()
    if (table.live <= highWater) {
      return
    }
    const now = clock.now()
    let firstGraceEnd = Infinity
    for (const entry of table.values()) {
      if (entry.firstSeen + gracePeriod > now && !entry.protected && entry.conns.length > 0) {
        firstGraceEnd = Math.min(firstGraceEnd, entry.firstSeen + gracePeriod)
      }
    }
    if (firstGraceEnd !== Infinity) {
      this.armTimer(Math.max(firstGraceEnd - now, silencePeriod))
    }
  }

  private armTimer (ms: number): void {
    if (this.timer !== undefined) {
      return
    }
    this.timer = this.init.timers.set(() => {
      this.timer = undefined
      this.maybeAutoTrim()
    }, ms)
  }

  private clearTimer (): void {
    this.init.timers.clear(this.timer)
    this.timer = undefined
  }
}

/**
 * The closes a trim waits for: one counter and one promise, where `Promise.all` over thousands
 * of closes would allocate a promise and a resolver per connection.
 */
class PendingCloses {
  /** closes started */
  started = 0
  private pending = 0
  private resolve: (() => void) | undefined

  add (count: number): void {
    this.started += count
    this.pending += count
  }

  /** called once per close when it has settled */
  readonly settle = (): void => {
    if (--this.pending === 0) {
      this.resolve?.()
    }
  }

  async settled (): Promise<void> {
    if (this.pending > 0) {
      await new Promise<void>(resolve => { this.resolve = resolve })
    }
  }
}

/** What the plan may do with a peer */
function statusOf (entry: PeerEntry, now: number, gracePeriod: number): number {
  if (entry.protected) {
    return PROTECTED
  }
  return now - entry.firstSeen < gracePeriod ? IN_GRACE : TRIMMABLE
}

function inClosingOrder (peers: PlanPeers, result: PlanResult): number[] {
  return result.everyTrimmable ? sortClosing(peers, result.close) : result.close
}
