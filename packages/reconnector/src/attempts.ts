/**
 * The reconnect dials: at most one in flight per peer, each with its own abort controller, and
 * an outcome that only counts while it still belongs to the peer's current dial (not aborted,
 * the peer not forgotten meanwhile).
 */

import { setMaxListeners } from 'main-event'
import type { DialFn } from './config.ts'
import type { PeerEntry } from './peer-entry.ts'
import type { CounterGroup, Logger } from '@libp2p/interface'

export interface AttemptOutcomes {
  /** whether the entry is still the one the reconnector keeps for its peer */
  current(entry: PeerEntry): boolean
  succeeded(entry: PeerEntry): void
  failed(entry: PeerEntry, error: Error): void
}

export class Attempts {
  private readonly log: Logger
  private readonly outcomes: AttemptOutcomes
  private readonly metrics?: CounterGroup
  private dialFn?: DialFn

  constructor (log: Logger, outcomes: AttemptOutcomes, metrics?: CounterGroup) {
    this.log = log
    this.outcomes = outcomes
    this.metrics = metrics
  }

  /** How attempts dial from now on (chosen at start, when the node's services are known) */
  use (dial: DialFn): void {
    this.dialFn = dial
  }

  /** One dial of the peer; its outcome goes to `outcomes`. Never rejects. */
  start (entry: PeerEntry): Promise<void> {
    if (entry.dial != null) {
      return entry.dial.done
    }
    const controller = new AbortController()
    // handed to libp2p's dial, which listens on it once per address it tries
    setMaxListeners(Infinity, controller.signal)
    let dialing: Promise<unknown>
    try {
      if (this.dialFn == null) {
        throw new Error('the reconnector is not started')
      }
      // called synchronously: the dial starts at the exact deadline of the clock
      dialing = this.dialFn(entry.peer, { signal: controller.signal })
    } catch (err) {
      dialing = Promise.reject(err)
    }
    const done = Promise.resolve(dialing).then(() => {
      if (this.settle(entry, controller, 'success')) {
        this.outcomes.succeeded(entry)
      }
    }, (err: Error) => {
      if (this.settle(entry, controller, 'failure')) {
        this.outcomes.failed(entry, err)
      }
    }).catch(err => { this.log.error('handling the attempt to %p failed - %e', entry.peer, err) })
    entry.dial = { controller, done }
    return done
  }

  /** Aborts the peer's dial in flight, if any: its outcome will not count */
  abort (entry: PeerEntry): void {
    const dial = entry.dial
    entry.dial = undefined
    dial?.controller.abort()
  }

  /** True when the outcome still belongs to the peer's current dial (not aborted, not stopped) */
  private settle (entry: PeerEntry, controller: AbortController, outcome: 'success' | 'failure'): boolean {
    this.metrics?.increment({ [outcome]: true })
    if (entry.dial?.controller !== controller || !this.outcomes.current(entry)) {
      return false
    }
    entry.dial = undefined
    return true
  }
}
