/**
 * The per-peer cleanup chain: the `onCleanup` layers, run top-down when a peer goes, and the
 * closing window after it during which new work for the peer fails fast.
 */

import { ConnectionClosedError, InvalidArgumentError, checkPeerId } from '@holdfast/interface'
import { asError } from './pending.ts'
import type { PeerEntry, PeerTable } from './peers.ts'
import type { Pending } from './pending.ts'
import type { Readiness } from './readiness.ts'
import type { CleanupBroadcaster, CleanupLayer, CleanupReason, CleanupReport, Clock, LayerReport, TrackedTimers } from '@holdfast/interface'
import type { Connection, Counter, CounterGroup, Logger, Metrics, PeerId } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

export interface CleanupDeps {
  readonly peers: PeerTable
  readonly pending: Pending
  readonly readiness: Readiness
  readonly clock: Clock
  readonly timers: TrackedTimers
  readonly log: Logger
  readonly metrics?: Metrics
  readonly connectionManager: ConnectionManager
  readonly closingWindowMs: number
  readonly publish: CleanupBroadcaster['publish']
  closeConnection(connection: Connection, reason: string): Promise<void>
  /** the closing window only runs while the service does: stopping clears every timer */
  isStarted(): boolean
}

interface Layer {
  readonly layer: string
  readonly order: number
  readonly fn: CleanupLayer
}

interface Counts {
  readonly start: number
  readonly pendingRejected: number
  readonly dialsAborted: number
}

export class CleanupChain {
  private layers: Layer[] = []
  private readonly deps: CleanupDeps
  private readonly counters?: { cleanups: CounterGroup, rejected: Counter, dialsAborted: Counter }

  constructor (deps: CleanupDeps) {
    this.deps = deps
    if (deps.metrics != null) {
      this.counters = {
        cleanups: deps.metrics.registerCounterGroup('holdfast_cleanup_broadcaster_cleanups_total', { label: 'reason', help: 'Full peer cleanups, by reason' }),
        rejected: deps.metrics.registerCounter('holdfast_cleanup_broadcaster_pending_rejected_total', { help: 'Tracked promises rejected by a cleanup' }),
        dialsAborted: deps.metrics.registerCounter('holdfast_cleanup_broadcaster_dials_aborted_total', { help: 'Dials aborted by a cleanup' })
      }
    }
  }

  onCleanup (layer: string, order: number, fn: CleanupLayer): () => void {
    if (typeof layer !== 'string' || layer.length === 0) {
      throw new InvalidArgumentError('layer must be a non-empty string', 'layer')
    }
    if (typeof order !== 'number' || !Number.isFinite(order)) {
      throw new InvalidArgumentError(`order must be a finite number, got ${String(order)}`, 'order')
    }
    if (typeof fn !== 'function') {
      throw new InvalidArgumentError('fn must be a function', 'fn')
    }
    const entry: Layer = { layer, order, fn }
    // stable: layers of equal order run in registration order
    this.layers = [...this.layers, entry].sort((a, b) => a.order - b.order)
    return () => {
      this.layers = this.layers.filter(l => l !== entry)
    }
  }

  async cleanup (peer: PeerId, reason: CleanupReason): Promise<CleanupReport> {
    checkPeerId(peer)
    checkReason(reason)
    return this.run(this.deps.peers.entryFor(peer), reason, true)
  }

  async closeAll (reason: CleanupReason): Promise<CleanupReport[]> {
    checkReason(reason)
    const peers = new Map<string, PeerId>()
    for (const entry of this.deps.peers.values()) {
      peers.set(entry.peer.toString(), entry.peer)
    }
    for (const connection of this.deps.connectionManager.getConnections()) {
      peers.set(connection.remotePeer.toString(), connection.remotePeer)
    }
    return Promise.all([...peers.values()].map(async peer => this.run(this.deps.peers.entryFor(peer), reason, true)))
  }

  /**
   * Full cleanup of a peer. Steps 1 and 2 run synchronously, so every pending promise of the
   * peer is rejected in the tick of the trigger. Concurrent triggers share one run.
   */
  async run (entry: PeerEntry, reason: CleanupReason, closeConnections: boolean): Promise<CleanupReport> {
    if (closeConnections) {
      entry.closeRequested = true
    }
    if (entry.cleaning != null) {
      return entry.cleaning
    }
    const start = this.deps.clock.now()
    const { peer } = entry

    // 1. mark closing: new track/dial fail at once
    this.startClosing(entry)
    // 2. reject everything in flight and abort the peer's signals
    const error = new ConnectionClosedError(`Connection to ${peer} closed (${reason})`, peer, reason)
    const { pendingRejected, dialsAborted } = this.deps.pending.rejectAll(entry, error)
    this.deps.readiness.reset(entry, error)
    this.counters?.cleanups.increment({ [reason]: true })
    this.counters?.rejected.increment(pendingRejected)
    this.counters?.dialsAborted.increment(dialsAborted)

    // set before the rest runs: with no async layer it finishes synchronously, and must find
    // (and clear) its own mark rather than leave a settled promise behind for the next cleanup
    const { promise, resolve, reject } = Promise.withResolvers<CleanupReport>()
    entry.cleaning = promise
    this.finish(entry, reason, { start, pendingRejected, dialsAborted }).then(resolve, (err: Error) => {
      entry.cleaning = undefined
      this.endClosing(entry)
      reject(err)
    })
    return promise
  }

  /** Steps 3 to 6: the layers top-down, closing connections, the report, the closing window */
  private async finish (entry: PeerEntry, reason: CleanupReason, counts: Counts): Promise<CleanupReport> {
    const { peer } = entry
    const { clock, log } = this.deps
    const layers: LayerReport[] = []
    for (const { layer, fn } of this.layers) {
      const layerStart = clock.now()
      try {
        await fn(peer, reason)
        layers.push({ layer, ok: true, ms: clock.now() - layerStart })
      } catch (err) {
        log.error('cleanup layer %s failed for %p - %e', layer, peer, err)
        layers.push({ layer, ok: false, ms: clock.now() - layerStart, error: asError(err).message })
      }
    }

    let connectionsClosed = 0
    if (entry.closeRequested) {
      const connections = this.deps.connectionManager.getConnections(peer)
      connectionsClosed = connections.length
      await Promise.all(connections.map(async connection => this.deps.closeConnection(connection, reason)))
    }

    const report: CleanupReport = {
      peer,
      reason,
      pendingRejected: counts.pendingRejected,
      dialsAborted: counts.dialsAborted,
      connectionsClosed,
      layers,
      durationMs: clock.now() - counts.start
    }
    entry.cleaning = undefined
    entry.closeRequested = false
    this.deps.publish('peer:cleaned', { peer, reason, report })

    // 6. the closing mark outlives the cleanup by closingWindowMs
    if (this.deps.closingWindowMs > 0 && this.deps.isStarted()) {
      entry.closingTimer = this.deps.timers.set(() => {
        entry.closingTimer = undefined
        this.endClosing(entry)
      }, this.deps.closingWindowMs)
    } else {
      this.endClosing(entry)
    }
    return report
  }

  private startClosing (entry: PeerEntry): void {
    entry.closing = true
    if (entry.closingTimer !== undefined) {
      this.deps.timers.clear(entry.closingTimer)
      entry.closingTimer = undefined
    }
  }

  /** Clears the closing mark (unless a cleanup is running) and drops the entry if nothing else holds it */
  endClosing (entry: PeerEntry): void {
    if (entry.cleaning != null) {
      return // the running cleanup ends it
    }
    if (entry.closingTimer !== undefined) {
      this.deps.timers.clear(entry.closingTimer)
      entry.closingTimer = undefined
    }
    entry.closing = false
    this.deps.peers.release(entry)
  }
}

function checkReason (reason: unknown): void {
  if (typeof reason !== 'string' || reason.length === 0) {
    throw new InvalidArgumentError('reason must be a CleanupReason', 'reason')
  }
}
