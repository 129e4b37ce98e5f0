/**
 * Discovery through the rendezvous: after each provide round, look up the other providers of the
 * realm's rendezvous key and connect to those not met yet; again every `RENDEZVOUS_LOOKUP_INTERVAL`,
 * or sooner (from `RENDEZVOUS_LOOKUP_RETRY`, doubling) while this node has met no member. A provider is only a candidate: it becomes a member when it
 * passes auth, like any other peer.
 */

import { setMaxListeners } from 'main-event'
import { RENDEZVOUS_LOOKUP_RETRY } from './constants.ts'
import { nextRetryDelay } from './policy.ts'
import type { Rendezvous } from './rendezvous.ts'
import type { Clock } from '@holdfast/interface'
import type { AbortOptions, Logger, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface DiscoveryInit {
  rendezvous: Rendezvous
  clock: Clock
  interval: number
  log: Logger
  /** already an authenticated member: nothing to do */
  known(peer: PeerId): boolean
  /** no member holds a connection to this node */
  alone(): boolean
  connect(peer: PeerId, opts: AbortOptions): Promise<unknown>
}

export class Discovery {
  private readonly init: DiscoveryInit
  private timer: unknown
  private shutdown = new AbortController()
  private round?: Promise<void>
  /** lookups in a row that left this node with no member connected */
  private misses = 0

  constructor (init: DiscoveryInit) {
    this.init = init
  }

  /** timers and rounds under way, with the rendezvous's own */
  get size (): number {
    const own = this.init.rendezvous.internalSizes()
    return (this.timer == null ? 0 : 1) + (this.round == null ? 0 : 1) + own.timers + own.provides + own.finds
  }

  start (): void {
    this.shutdown = new AbortController()
    // each round's lookup and each connect to a provider found listen to it
    setMaxListeners(Infinity, this.shutdown.signal)
    this.init.rendezvous.start()
    this.now()
  }

  /** a provide round (joining one under way) then a lookup; the addresses changed, or a new member wants to be found */
  now (): void {
    if (!this.shutdown.signal.aborted) {
      this.round ??= this.run().finally(() => { this.round = undefined })
    }
  }

  /** the providers known to the rendezvous that are `peer`, with their addresses */
  async addrsOf (peer: PeerId, opts: AbortOptions): Promise<Multiaddr[]> {
    for await (const provider of this.init.rendezvous.find({ signal: opts.signal })) {
      if (provider.id.equals(peer)) {
        return provider.multiaddrs
      }
    }
    return []
  }

  async stop (): Promise<void> {
    this.init.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.shutdown.abort()
    // first: it aborts the provide round this round may be waiting on
    await this.init.rendezvous.stop()
    await this.round
  }

  private async run (): Promise<void> {
    this.init.clock.clearTimeout(this.timer)
    this.timer = undefined
    const signal = this.shutdown.signal
    try {
      await this.init.rendezvous.provide()
      const found: PeerId[] = []
      for await (const provider of this.init.rendezvous.find({ signal })) {
        if (!this.init.known(provider.id)) {
          found.push(provider.id)
        }
      }
      await Promise.allSettled(found.map(async peer => this.init.connect(peer, { signal }).catch(err => {
        this.init.log('rendezvous: %p not reached: %e', peer, err)
      })))
    } catch (err) {
      this.init.log('rendezvous lookup: %e', err)
    }
    // alone, it looks again soon (the others may have provided just after its lookup); once among members, rarely
    this.misses = this.init.alone() ? this.misses + 1 : 0
    if (!signal.aborted) {
      this.timer = this.init.clock.setTimeout(() => { this.now() }, nextRetryDelay(this.misses, this.init.interval, RENDEZVOUS_LOOKUP_RETRY))
    }
  }
}
