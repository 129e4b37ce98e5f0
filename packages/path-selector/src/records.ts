/**
 * What the service holds per peer and per path, shared by the service, the heartbeat and the
 * upgrade, and the one way an operation gets a signal bounded by a timeout on the service's
 * clock.
 */

import { TimeoutError } from '@holdfast/interface'
import { anySignal } from 'any-signal'
import type { PathCandidate } from './policy.ts'
import type { Path, PathKind, PathMode, PathStatus, TrackedTimers } from '@holdfast/interface'
import type { Connection, PeerId } from '@libp2p/interface'
import type { ClearableSignal } from 'any-signal'

/**
 * One connection to a peer. Every field is set in the literal so V8 keeps them in-object
 * (a few hundred bytes of state per path at most).
 */
export interface PathRecord extends PathCandidate {
  readonly id: string
  readonly connection: Connection
  readonly kind: PathKind
  readonly transport: string
  readonly holePunched: boolean
  realmRelay: boolean
  rttMs: number | undefined
  successes: number
  /** consecutive failures since the last success */
  failures: number
  status: PathStatus
  lastActive: number
  pinging: boolean
}

export interface PeerRecord {
  readonly peer: PeerId
  /** open paths, in the order they opened (the path choice's tie-break) */
  paths: PathRecord[]
  current: PathRecord | undefined
  mode: PathMode | undefined
  /** clock time of the last mode change */
  modeSince: number
  upgrading: Promise<boolean> | undefined
  /** upgrade attempts since the last fallback */
  upgradeAttempts: number
  retryTimer: unknown
  /** the relay-backup tag and protection are set */
  backup: boolean
}

/** A path as `paths()` reports it */
export function snapshotOf (p: PathRecord): Path {
  return {
    connectionId: p.id,
    kind: p.kind,
    transport: p.transport,
    remoteAddr: p.connection.remoteAddr,
    rttMs: p.rttMs,
    successes: p.successes,
    failures: p.failures,
    status: p.status,
    lastActive: p.lastActive,
    holePunched: p.holePunched
  }
}

export interface BoundedSignal {
  signal: ClearableSignal
  /** releases the timer and the listeners on the other signals */
  clear(): void
}

/** A signal that aborts after `ms` of the service's clock or when any of `signals` does */
export function boundedSignal (timers: TrackedTimers, ms: number, signals: Array<AbortSignal | undefined>): BoundedSignal {
  const timeout = new AbortController()
  const timer = timers.set(() => { timeout.abort(new TimeoutError(`timed out after ${ms} ms`)) }, ms)
  const signal = anySignal([timeout.signal, ...signals])
  return {
    signal,
    clear: () => {
      signal.clear()
      timers.clear(timer)
    }
  }
}
