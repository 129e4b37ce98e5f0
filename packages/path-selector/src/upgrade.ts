/**
 * The direct upgrade of a peer reached through a relay: whether to try (the NAT matrix, which
 * side dials), the WebRTC-over-relay dial itself, and its retries with backoff after a fallback.
 */

import { ConnectionClosedError } from '@holdfast/interface'
import { upgradeTargets } from './addrs.ts'
import { natDecision, retryDelay } from './policy.ts'
import { boundedSignal } from './records.ts'
import type { PathSelectorConfig } from './config.ts'
import type { PathRecord, PeerRecord } from './records.ts'
import type { TrackedTimers } from '@holdfast/interface'
import type { AbortOptions, Connection, CounterGroup, Logger, PeerId } from '@libp2p/interface'
import type { OpenConnectionOptions } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface UpgradeContext {
  config: PathSelectorConfig
  timers: TrackedTimers
  log: Logger
  metrics?: CounterGroup
  /** aborted when the service stops */
  stopSignal(): AbortSignal
  running(): boolean
  /** the peer was dropped since `entry` was made, or its cleanup is running */
  gone(entry: PeerRecord): boolean
  knownAddrs(peer: PeerId): Promise<Multiaddr[]>
  /** how the service dials (through the cleanup broadcaster when the node has one) */
  dial(target: Multiaddr[], opts: OpenConnectionOptions): Promise<Connection>
}

export class Upgrader {
  /** upgrade dials under way */
  inFlight = 0

  private readonly context: UpgradeContext

  constructor (context: UpgradeContext) {
    this.context = context
  }

  /**
   * Tries a direct path to the peer of `entry` unless it has one or the NAT matrix says
   * relay; one attempt at a time per peer, later callers join it.
   */
  async upgrade (entry: PeerRecord, opts: AbortOptions): Promise<boolean> {
    if (entry.paths.some(p => p.kind === 'direct' && p.status === 'active')) {
      return true
    }
    const relayed = entry.paths.find(p => p.kind === 'relayed' && p.status !== 'closed')
    if (relayed == null) {
      return false
    }
    const { localNat, natOf } = this.context.config
    const remoteNat = natOf(entry.peer)
    if (natDecision(localNat, remoteNat) === 'relay') {
      this.context.log('NAT matrix says relay for %p (%s -> %s): no upgrade', entry.peer, localNat, remoteNat)
      return false
    }
    entry.upgrading ??= this.dialDirect(entry, relayed, opts).finally(() => { entry.upgrading = undefined })
    return entry.upgrading
  }

  /** Retries the upgrade after `delayMs`, when this side should upgrade and nothing is pending */
  schedule (entry: PeerRecord, delayMs: number): void {
    if (!this.context.running() || entry.retryTimer != null || entry.upgrading != null || !this.shouldUpgrade(entry)) {
      return
    }
    const { config, timers, log } = this.context
    entry.retryTimer = timers.set(() => {
      entry.retryTimer = undefined
      if (this.context.gone(entry)) {
        return
      }
      entry.upgradeAttempts++
      this.upgrade(entry, {}).then(ok => {
        if (!ok && entry.mode !== 'direct-primary' && entry.upgradeAttempts < config.upgradeMaxAttempts) {
          this.schedule(entry, retryDelay(entry.upgradeAttempts - 1, config.retryInitialDelayMs, config.retryMaxDelayMs))
        }
      }, err => {
        if (this.context.gone(entry)) {
          log('upgrade of %p ended with its peer - %e', entry.peer, err)
        } else {
          log.error('upgrade of %p threw - %e', entry.peer, err)
        }
      })
    }, delayMs)
  }

  /** The peer is direct-primary: the retries start over after its next fallback */
  succeeded (entry: PeerRecord): void {
    entry.upgradeAttempts = 0
    this.forget(entry)
  }

  /** Cancels the peer's pending retry */
  forget (entry: PeerRecord): void {
    this.context.timers.clear(entry.retryTimer)
    entry.retryTimer = undefined
  }

  /** The side that dialed the relayed connection upgrades, so two WebRTC dials don't cross */
  private shouldUpgrade (entry: PeerRecord): boolean {
    return this.context.config.upgrade && entry.paths.some(p => p.kind === 'relayed' && p.connection.direction === 'outbound')
  }

  /**
   * WebRTC private-to-private through the relay (`upgradeTargets`), with `force`, because
   * libp2p would otherwise hand back the open relayed connection when it has no limits.
   * Rejects when the caller aborts or the peer is dropped or cleaned up meanwhile (with the
   * error that ended the dial: the cleanup's `ConnectionClosedError` when it went through the
   * broadcaster); any other failure resolves false.
   */
  private async dialDirect (entry: PeerRecord, relayed: PathRecord, opts: AbortOptions): Promise<boolean> {
    const { config, timers, metrics, log } = this.context
    const bounded = boundedSignal(timers, config.upgradeTimeoutMs, [this.context.stopSignal(), opts.signal])
    this.inFlight++
    try {
      const targets = upgradeTargets(await this.context.knownAddrs(entry.peer), relayed.connection.remoteAddr, entry.peer)
      if (this.context.gone(entry)) {
        throw new ConnectionClosedError(`${entry.peer.toString()} was dropped before the upgrade dialed`, entry.peer)
      }
      const connection = await this.context.dial(targets, { signal: bounded.signal, force: true })
      const ok = connection.direct !== false && connection.limits == null
      metrics?.increment({ [ok ? 'success' : 'failed']: true })
      return ok
    } catch (err) {
      metrics?.increment({ failed: true })
      if (opts.signal?.aborted === true || this.context.gone(entry)) {
        throw err
      }
      log('upgrade of %p failed - %e', entry.peer, err)
      return false
    } finally {
      this.inFlight--
      bounded.clear()
    }
  }
}
