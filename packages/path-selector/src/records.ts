/**
 * What the service holds per peer and per path, shared by the service, the heartbeat and the
 * upgrade; how a path choice is applied to them; and the one way an operation gets a signal
 * bounded by a timeout on the service's clock.
 */

import { TimeoutError } from '@holdfast/interface'
import { anySignal } from 'any-signal'
import { selectPath } from './policy.ts'
import type { PathCandidate, SelectPath } from './policy.ts'
import type { Path, PathKind, PathMode, PathStatus, TrackedTimers } from '@holdfast/interface'
import type { Connection, Logger, PeerId } from '@libp2p/interface'
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

/** A path as a custom path choice sees it: plain data, a copy it cannot change the service through */
export function candidateOf (p: PathRecord): PathCandidate {
  return Object.freeze({ id: p.id, kind: p.kind, status: p.status, rttMs: p.rttMs, holePunched: p.holePunched, realmRelay: p.realmRelay })
}

/**
 * The path choice `select` makes over `candidates`. The default `selectPath` reads the
 * records as they are (no allocation); a custom one gets plain, frozen copies and its pick is
 * matched back by `id`. A custom choice that throws or picks a path that is not an open
 * candidate is logged and replaced by the default's.
 */
export function choosePath (select: SelectPath, candidates: PathRecord[], current: PathRecord | undefined, log: Logger): PathRecord | undefined {
  if (select === selectPath) {
    return selectPath(candidates, current)
  }
  try {
    const picked = select(candidates.map(candidateOf), current == null ? undefined : candidateOf(current))
    if (picked === undefined) {
      return undefined
    }
    const path = candidates.find(p => p.id === picked?.id && p.status !== 'closed')
    if (path != null) {
      return path
    }
    log.error('selectPath picked %s, which is not an open candidate: using the default', picked?.id)
  } catch (err) {
    log.error('selectPath threw, using the default - %e', err)
  }
  return selectPath(candidates, current)
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
