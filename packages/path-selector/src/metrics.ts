/** The service's counters, when the node has metrics */

import type { CounterGroup, Metrics } from '@libp2p/interface'

export interface PathSelectorMetrics {
  modes: CounterGroup
  upgrades: CounterGroup
  streams: CounterGroup
  reservations: CounterGroup
}

export function registerMetrics (metrics: Metrics | undefined): PathSelectorMetrics | undefined {
  if (metrics == null) {
    return undefined
  }
  return {
    modes: metrics.registerCounterGroup('holdfast_path_selector_mode_changes_total', { label: 'mode', help: 'Peer mode changes, by new mode' }),
    upgrades: metrics.registerCounterGroup('holdfast_path_selector_upgrades_total', { label: 'result', help: 'Direct-path upgrade attempts, by result' }),
    streams: metrics.registerCounterGroup('holdfast_path_selector_streams_total', { label: 'path', help: 'Streams opened by openStream, by the path that carried them (fallback = not the first pick)' }),
    reservations: metrics.registerCounterGroup('holdfast_path_selector_reservations_total', { label: 'event', help: 'Relay reservations lost and restored' })
  }
}
