/**
 * The relay-reservation watchdog: notices when a reservation on a relay is lost (its relay
 * connection closed, or its address went away), re-dials the relay with backoff and asks for
 * the reservation again, and reports it restored once its address is back.
 */

import { circuitAddr, relayAddrOf, relayPeerOf } from '@holdfast/interface'
import { isRelayedAddr } from './addrs.ts'
import { retryDelay } from './policy.ts'
import { boundedSignal } from './records.ts'
import type { PathSelectorConfig } from './config.ts'
import type { HoldfastEvents, TrackedTimers } from '@holdfast/interface'
import type { AbortOptions, Connection, CounterGroup, Logger, PeerId } from '@libp2p/interface'
import type { AddressManager, ConnectionManager, TransportManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

interface RelayWatch {
  readonly relay: PeerId
  /** the relay's own address, ending with /p2p/<relay> */
  addr: Multiaddr
  lost: boolean
  lostAt: number
  attempts: number
  timer: unknown
}

export interface WatchdogContext {
  components: { addressManager: AddressManager, connectionManager: ConnectionManager, transportManager: TransportManager }
  /** the retry delays; a re-dial still running after `upgradeTimeoutMs` has failed */
  config: Pick<PathSelectorConfig, 'clock' | 'retryInitialDelayMs' | 'retryMaxDelayMs' | 'upgradeTimeoutMs'>
  timers: TrackedTimers
  log: Logger
  metrics?: CounterGroup
  /** aborted when the service stops */
  stopSignal(): AbortSignal
  /** how the service dials (through the cleanup broadcaster when the node has one) */
  dial(addr: Multiaddr, opts: AbortOptions): Promise<Connection>
  emit<K extends 'relay:reservation-lost' | 'relay:reservation-restored'>(type: K, detail: HoldfastEvents[K]): void
}

export class ReservationWatchdog {
  /** re-dials under way */
  inFlight = 0

  private readonly context: WatchdogContext
  private readonly relays = new Map<string, RelayWatch>()
  private running = false

  constructor (context: WatchdogContext) {
    this.context = context
  }

  /** relays whose reservation is watched */
  get size (): number {
    return this.relays.size
  }

  start (): void {
    this.running = true
    this.refresh()
  }

  /** Forgets every watch: the service clears all its timers on stop */
  stop (): void {
    this.running = false
    this.relays.clear()
  }

  /** Compares our reservations with what is watched: new ones are watched, lost ones restored, restored ones reported */
  refresh (): void {
    if (!this.running) {
      return
    }
    const current = this.reservedRelays()
    for (const [relay, addr] of current) {
      const watch = this.relays.get(relay)
      if (watch == null) {
        const connection = this.context.components.connectionManager.getConnections().find(c => c.remotePeer.toString() === relay)
        if (connection != null) {
          this.relays.set(relay, { relay: connection.remotePeer, addr, lost: false, lostAt: 0, attempts: 0, timer: undefined })
        }
      } else if (watch.lost) {
        this.restored(watch, addr)
      }
    }
    for (const [relay, watch] of this.relays) {
      if (!watch.lost && !current.has(relay)) {
        this.lost(watch)
      }
    }
  }

  connectionClosed (connection: Connection): void {
    const relay = connection.remotePeer.toString()
    const watch = this.relays.get(relay)
    // the relay transport drops the reservation's addresses in its own connection:close
    // listener, which runs before ours (it was added first)
    if (watch != null && !watch.lost && !this.reservedRelays().has(relay)) {
      this.lost(watch)
    }
  }

  /** Our relay reservations, from our own `<relay>/p2p-circuit/p2p/<self>` addresses */
  private reservedRelays (): Map<string, Multiaddr> {
    const relays = new Map<string, Multiaddr>()
    for (const ma of this.context.components.addressManager.getAddresses()) {
      const relayAddr = isRelayedAddr(ma) ? relayAddrOf(ma) : undefined
      const relay = relayPeerOf(ma)
      if (relayAddr != null && relay != null) {
        relays.set(relay, relayAddr)
      }
    }
    return relays
  }

  private lost (watch: RelayWatch): void {
    watch.lost = true
    watch.lostAt = this.context.config.clock.now()
    watch.attempts = 0
    this.context.metrics?.increment({ lost: true })
    this.context.log('reservation on relay %p lost', watch.relay)
    this.context.emit('relay:reservation-lost', { relay: watch.relay })
    this.scheduleRestore(watch)
  }

  private restored (watch: RelayWatch, addr: Multiaddr): void {
    watch.lost = false
    watch.addr = addr
    this.context.timers.clear(watch.timer)
    watch.timer = undefined
    this.context.metrics?.increment({ restored: true })
    this.context.log('reservation on relay %p restored after %d attempts', watch.relay, watch.attempts)
    this.context.emit('relay:reservation-restored', { relay: watch.relay, attempts: watch.attempts, downtimeMs: this.context.config.clock.now() - watch.lostAt })
    watch.attempts = 0
  }

  private watching (watch: RelayWatch): boolean {
    return this.running && watch.lost && this.relays.get(watch.relay.toString()) === watch
  }

  /** Re-dials the relay and asks for the reservation again, with backoff, until it is back or the service stops */
  private scheduleRestore (watch: RelayWatch): void {
    const { retryInitialDelayMs, retryMaxDelayMs } = this.context.config
    watch.timer = this.context.timers.set(() => {
      watch.timer = undefined
      if (!this.watching(watch)) {
        return
      }
      watch.attempts++
      this.restore(watch).catch(err => {
        this.context.log('reservation on %p not restored (attempt %d) - %e', watch.relay, watch.attempts, err)
      }).finally(() => {
        if (this.watching(watch) && watch.timer == null) {
          this.scheduleRestore(watch)
        }
      })
    }, retryDelay(watch.attempts, retryInitialDelayMs, retryMaxDelayMs))
  }

  /**
   * libp2p re-makes a reservation it found through discovery once it sees the relay again,
   * but not one configured by address: hence the `listen` when the dial alone did not bring
   * the address back.
   */
  private async restore (watch: RelayWatch): Promise<void> {
    const bounded = boundedSignal(this.context.timers, this.context.config.upgradeTimeoutMs, [this.context.stopSignal()])
    this.inFlight++
    try {
      await this.context.dial(watch.addr, { signal: bounded.signal })
      if (!this.reservedRelays().has(watch.relay.toString())) {
        await this.context.components.transportManager.listen([circuitAddr(watch.addr)])
      }
      this.refresh()
    } finally {
      this.inFlight--
      bounded.clear()
    }
  }
}
