/**
 * The realm's counters: the figures of `realm.stats()` and, when the node has metrics, the same
 * counts as labelled metrics registered once, so a dashboard can tell an outsider flood from a
 * member with a wrong PSK.
 */

import type { AuthFailure, RealmRejectReason, RealmStats, RejectReason } from '@holdfast/interface'
import type { CounterGroup, Metrics } from '@libp2p/interface'

/** where a gate turned a non-member away: `reservation`, `circuit`, or the protocol of a member-only service (the realm DHT, the address book) */
export type RefusedAt = string

export class RealmCounters {
  private readonly stats: RealmStats = {
    authSucceeded: 0,
    authFailed: 0,
    authFailures: {},
    announcementsSent: 0,
    announcementsAccepted: 0,
    rejected: { malformed: 0, 'too-big': 0, unsealed: 0, 'not-sender': 0, replay: 0, stale: 0, future: 0 },
    connectionsRejected: { 'auth-failed': 0, 'auth-timeout': 0, denied: 0 },
    reservationsDenied: 0,
    circuitsDenied: 0,
    accessDenied: 0
  }

  private readonly auth?: CounterGroup
  private readonly rejected?: CounterGroup
  private readonly announcements?: CounterGroup
  private readonly refusals?: CounterGroup

  constructor (metrics?: Metrics) {
    this.auth = metrics?.registerCounterGroup('holdfast_realm_auth_total', { label: 'result', help: 'Realm auth exchanges, by result (ok, or the reason it failed)' })
    this.rejected = metrics?.registerCounterGroup('holdfast_realm_rejected_total', { label: 'reason', help: 'Connections of non-members closed or refused, by reason' })
    this.announcements = metrics?.registerCounterGroup('holdfast_realm_announcements_rejected_total', { label: 'reason', help: 'Member-list announcements refused, by reason' })
    this.refusals = metrics?.registerCounterGroup('holdfast_realm_access_denied_total', { label: 'resource', help: 'Member-only resources (reservations, circuits, DHT, address book) refused to non-members, by resource' })
  }

  authSucceeded (): void {
    this.stats.authSucceeded++
    this.auth?.increment({ ok: true })
  }

  authFailed (reason: AuthFailure): void {
    this.stats.authFailed++
    this.stats.authFailures[reason] = (this.stats.authFailures[reason] ?? 0) + 1
    this.auth?.increment({ [reason]: true })
  }

  announcementSent (): void {
    this.stats.announcementsSent++
  }

  announcementAccepted (): void {
    this.stats.announcementsAccepted++
  }

  announcementRejected (reason: RejectReason): void {
    this.stats.rejected[reason]++
    this.announcements?.increment({ [reason]: true })
  }

  connectionRejected (reason: RealmRejectReason): void {
    this.stats.connectionsRejected[reason]++
    this.rejected?.increment({ [reason]: true })
  }

  refused (where: RefusedAt): void {
    if (where === 'reservation') {
      this.stats.reservationsDenied++
    } else if (where === 'circuit') {
      this.stats.circuitsDenied++
    } else {
      this.stats.accessDenied++
    }
    this.refusals?.increment({ [where]: true })
  }

  snapshot (): RealmStats {
    const s = this.stats
    return { ...s, authFailures: { ...s.authFailures }, rejected: { ...s.rejected }, connectionsRejected: { ...s.connectionsRejected } }
  }
}
