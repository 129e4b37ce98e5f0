/**
 * The realm's metrics, registered once when the service is built, each with help text and a
 * label, so a dashboard can tell an outsider flood from a member with a wrong PSK.
 */

import type { CounterGroup, Metrics } from '@libp2p/interface'

export interface RealmMetrics {
  /** auth exchanges by result: `ok`, or why one failed */
  auth?: CounterGroup
  /** connections closed (or refused) because their peer is not a member, by reason */
  rejected?: CounterGroup
  /** member-list announcements refused, by reason */
  announcementsRejected?: CounterGroup
  /** member-only resources (DHT, address book, relay) refused to a non-member, by resource */
  accessDenied?: CounterGroup
}

export function registerMetrics (metrics: Metrics | undefined): RealmMetrics {
  if (metrics == null) {
    return {}
  }
  return {
    auth: metrics.registerCounterGroup('holdfast_realm_auth_total', { label: 'result', help: 'Realm auth exchanges, by result (ok, or the reason it failed)' }),
    rejected: metrics.registerCounterGroup('holdfast_realm_rejected_total', { label: 'reason', help: 'Connections of non-members closed or refused, by reason' }),
    announcementsRejected: metrics.registerCounterGroup('holdfast_realm_announcements_rejected_total', { label: 'reason', help: 'Member-list announcements refused, by reason' }),
    accessDenied: metrics.registerCounterGroup('holdfast_realm_access_denied_total', { label: 'resource', help: 'Member-only resources refused to non-members, by resource' })
  }
}
