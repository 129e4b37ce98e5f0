/**
 * The idle timeout: one sweep timer for all connections, running every `idleTimeout / 4` while
 * there are connections. A connection seen without streams (at its open or at a sweep) for
 * `idleTimeout` is closed, unless its peer is protected.
 */

import { IDLE_SWEEPS_PER_TIMEOUT } from './constants.ts'
import { isIdle } from './policy.ts'
import type { ConnEntry, PeerEntry, PeerTable } from './peer-table.ts'
import type { Settings } from './policy.ts'
import type { Clock, CloseReason, TrackedTimers } from '@holdfast/interface'

export interface IdleSweepInit {
  table: PeerTable
  clock: Clock
  timers: TrackedTimers
  settings(): Settings
  isStarted(): boolean
  /** closes one connection with a reason, and announces it */
  close(entry: PeerEntry, conn: ConnEntry, reason: CloseReason): void
}

export class IdleSweep {
  private readonly init: IdleSweepInit
  private timer: unknown

  constructor (init: IdleSweepInit) {
    this.init = init
  }

  /** Arms the sweep if it should run and does not yet */
  arm (): void {
    const { idleTimeout } = this.init.settings()
    if (this.timer !== undefined || !this.init.isStarted() || this.init.table.connected === 0 || idleTimeout === Infinity) {
      return
    }
    this.timer = this.init.timers.set(() => {
      this.timer = undefined
      this.sweep()
      this.arm()
    }, idleTimeout / IDLE_SWEEPS_PER_TIMEOUT)
  }

  /** The timeout changed: the sweep starts again at the new pace */
  restart (): void {
    this.stop()
    this.arm()
  }

  stop (): void {
    this.init.timers.clear(this.timer)
    this.timer = undefined
  }

  private sweep (): void {
    const now = this.init.clock.now()
    const { idleTimeout } = this.init.settings()
    for (const entry of this.init.table.values()) {
      if (entry.protected) {
        continue
      }
      for (const conn of entry.conns) {
        if (conn.closing) {
          continue
        }
        if (conn.connection.streams.length > 0) {
          conn.idleSince = undefined
        } else if (conn.idleSince === undefined) {
          conn.idleSince = now
        } else if (isIdle(conn.idleSince, now, idleTimeout)) {
          this.init.close(entry, conn, 'idle')
        }
      }
    }
  }
}
