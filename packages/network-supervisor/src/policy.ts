/**
 * Pure decisions of the network supervisor: which recovery action a settled batch needs,
 * whether an event is well formed, whether a custom processor's action is debounced, and how
 * the adapters turn platform readings into snapshots. No libp2p objects, no timers.
 */

import type { AppLifecycleState, NetworkAvailability, NetworkCleanupReason, NetworkEvent, NetworkSnapshot, ReconnectReason, RecoveryAction } from '@holdfast/interface'

export type TransportFlags = NetworkSnapshot['transport']

/** A snapshot without its sequence: what adapters compare to decide whether anything changed */
export type SnapshotContent = Omit<NetworkSnapshot, 'sequence'>

/**
 * What one event asks for, before ranking. `cleanup-then-reconnect` is a `cleanup-connections`
 * followed later in the batch by a `force-reconnect`; it runs as `force-reconnect` whose
 * cleanup half carries the cleanup's reason.
 */
export type Contribution = RecoveryAction | 'cleanup-then-reconnect'

/** The rank of the contributions, strongest first: the strongest one in a batch decides its action */
export const RANK: readonly Contribution[] = Object.freeze(['cleanup-then-reconnect', 'cleanup-only', 'force-reconnect', 'offline', 'restore', 'probe', 'noop'])

export interface PlanOptions {
  /** ms; a foreground after at least this long in the background forces a reconnect */
  longBackgroundThreshold: number
}

export interface RecoveryPlan {
  action: RecoveryAction
  /** the highest-ranked contribution (differs from `action` only for `cleanup-then-reconnect`) */
  contribution: Contribution
  /** for `cleanup-only`, and for the cleanup half of `force-reconnect` */
  cleanupReason?: NetworkCleanupReason
  /** for `force-reconnect` */
  reconnectReason?: ReconnectReason
  /** the newest accepted snapshot after the batch (the one before it when none was accepted) */
  snapshot?: NetworkSnapshot
}

/** Rank index of a contribution: lower is stronger */
export function rankOf (contribution: Contribution): number {
  return RANK.indexOf(contribution)
}

/**
 * The one recovery action for a settled batch. `before` is the snapshot the supervisor held
 * before the batch; `opts.longBackgroundThreshold` (ms) is where a foreground stops probing
 * and forces a reconnect.
 */
export function selectRecoveryAction (events: readonly NetworkEvent[], before?: NetworkSnapshot, opts?: PlanOptions): RecoveryAction {
  return planRecovery(events, before, opts).action
}

export function planRecovery (events: readonly NetworkEvent[], before: NetworkSnapshot | undefined, opts: PlanOptions = { longBackgroundThreshold: 30_000 }): RecoveryPlan {
  let best = 'noop' as Contribution
  let cleanupReason: NetworkCleanupReason | undefined
  let reconnectReason: ReconnectReason | undefined
  // true when the contribution is now the best one (an equal one counts: the later reason wins)
  const consider = (contribution: Contribution): boolean => {
    if (rankOf(contribution) <= rankOf(best)) {
      best = contribution
      return true
    }
    return false
  }

  // explicit commands: the last force-reconnect names the reconnect
  let lastForce = -1
  events.forEach((event, i) => {
    if (event.type === 'force-reconnect') {
      lastForce = i
    }
  })
  events.forEach((event, i) => {
    if (event.type === 'cleanup-connections') {
      if (consider(lastForce > i ? 'cleanup-then-reconnect' : 'cleanup-only')) {
        cleanupReason = event.reason
      }
    } else if (event.type === 'force-reconnect') {
      consider('force-reconnect')
    } else if (event.type === 'app-lifecycle-changed') {
      consider(lifecycleContribution(event.state, opts.longBackgroundThreshold))
    }
  })

  const path = pathOutcome(events, before)
  consider(path.contribution)

  if (best === 'force-reconnect' || best === 'cleanup-then-reconnect') {
    const force = events[lastForce]
    reconnectReason = force?.type === 'force-reconnect' ? force.reason : 'long-background'
  }
  if (best === 'force-reconnect') {
    cleanupReason = undefined
  }
  return {
    action: best === 'cleanup-then-reconnect' ? 'force-reconnect' : best,
    contribution: best,
    ...(cleanupReason === undefined ? {} : { cleanupReason }),
    ...(reconnectReason === undefined ? {} : { reconnectReason }),
    ...(path.snapshot === undefined ? {} : { snapshot: path.snapshot })
  }
}

function lifecycleContribution (state: AppLifecycleState, longBackgroundThreshold: number): Contribution {
  if (state.state === 'background') {
    return 'noop'
  }
  return state.backgroundDurationMs >= longBackgroundThreshold ? 'force-reconnect' : 'probe'
}

/**
 * The path events of a batch, together: only the newest accepted snapshot decides
 * availability. A snapshot is accepted when its sequence is above every sequence seen before
 * it (the one before the batch included); a repeat or an older one is ignored.
 */
function pathOutcome (events: readonly NetworkEvent[], before: NetworkSnapshot | undefined): { contribution: Contribution, snapshot?: NetworkSnapshot } {
  const accepted: NetworkSnapshot[] = []
  let newest = before?.sequence ?? Number.NEGATIVE_INFINITY
  for (const event of events) {
    if (event.type === 'network-path-changed' && event.snapshot.sequence > newest) {
      newest = event.snapshot.sequence
      accepted.push(event.snapshot)
    }
  }
  const last = accepted.at(-1)
  if (last === undefined) {
    return { contribution: 'noop', ...(before === undefined ? {} : { snapshot: before }) }
  }
  return { contribution: snapshotContribution(accepted, last, before), snapshot: last }
}

function snapshotContribution (accepted: readonly NetworkSnapshot[], last: NetworkSnapshot, before: NetworkSnapshot | undefined): Contribution {
  if (before !== undefined && accepted.every(s => sameContent(s, before))) {
    return 'noop' // the same content under a new sequence: nothing changed
  }
  if (last.availability === 'unavailable') {
    return 'offline'
  }
  if (last.availability === 'unknown') {
    // the platform lost track of the path: a probe checks what is still alive, cheaply
    return 'probe'
  }
  const wentAway = accepted.some(s => s.availability === 'unavailable')
  const transportChanged = before !== undefined && accepted.some(s => !sameTransport(s.transport, before.transport))
  if (before === undefined || before.availability !== 'available' || wentAway || transportChanged) {
    return 'restore'
  }
  // same availability and transport: only expensive / constrained changed
  return 'noop'
}

export function sameTransport (a: TransportFlags, b: TransportFlags): boolean {
  return a.wifi === b.wifi && a.cellular === b.cellular && a.ethernet === b.ethernet && a.vpn === b.vpn && a.other === b.other
}

export function sameContent (a: SnapshotContent, b: SnapshotContent): boolean {
  return a.availability === b.availability && sameTransport(a.transport, b.transport) &&
    a.isExpensive === b.isExpensive && a.isConstrained === b.isConstrained
}

// ------------------------------------------------------------------ validation

const EVENT_TYPES = new Set(['network-path-changed', 'app-lifecycle-changed', 'cleanup-connections', 'force-reconnect'])
const AVAILABILITIES = new Set<NetworkAvailability>(['unknown', 'available', 'unavailable'])
const CLEANUP_REASONS = new Set<NetworkCleanupReason>(['app-terminating', 'user-logout', 'stale-connection-suspected', 'manual-reset'])
const RECONNECT_REASONS = new Set<ReconnectReason>(['network-path-changed', 'long-background', 'probe-failed', 'manual-reconnect', 'stale-connection-suspected'])
const TRANSPORT_FLAGS = ['wifi', 'cellular', 'ethernet', 'vpn', 'other'] as const

/** What is wrong with an event from outside (a platform hook, a manual host), or undefined when it is well formed */
export function eventProblem (event: unknown): string | undefined {
  if (event == null || typeof event !== 'object') {
    return 'event must be an object'
  }
  const e = event as Record<string, unknown>
  if (typeof e.type !== 'string' || !EVENT_TYPES.has(e.type)) {
    return `unknown event type ${JSON.stringify(e.type)}`
  }
  switch (e.type) {
    case 'network-path-changed':
      return snapshotProblem(e.snapshot)
    case 'app-lifecycle-changed':
      return lifecycleProblem(e.state)
    case 'cleanup-connections':
      return CLEANUP_REASONS.has(e.reason as NetworkCleanupReason) ? undefined : `unknown cleanup reason ${JSON.stringify(e.reason)}`
    default:
      return RECONNECT_REASONS.has(e.reason as ReconnectReason) ? undefined : `unknown reconnect reason ${JSON.stringify(e.reason)}`
  }
}

export function snapshotProblem (snapshot: unknown): string | undefined {
  if (snapshot == null || typeof snapshot !== 'object') {
    return 'snapshot must be an object'
  }
  const s = snapshot as Record<string, unknown>
  if (typeof s.sequence !== 'number' || !Number.isFinite(s.sequence)) {
    return 'snapshot.sequence must be a finite number'
  }
  if (!AVAILABILITIES.has(s.availability as NetworkAvailability)) {
    return `snapshot.availability must be unknown, available or unavailable, got ${JSON.stringify(s.availability)}`
  }
  const transport = s.transport as Record<string, unknown> | null | undefined
  if (transport == null || typeof transport !== 'object') {
    return 'snapshot.transport must be an object'
  }
  for (const flag of TRANSPORT_FLAGS) {
    if (typeof transport[flag] !== 'boolean') {
      return `snapshot.transport.${flag} must be a boolean`
    }
  }
  if (typeof s.isExpensive !== 'boolean' || typeof s.isConstrained !== 'boolean') {
    return 'snapshot.isExpensive and snapshot.isConstrained must be booleans'
  }
  return undefined
}

function lifecycleProblem (state: unknown): string | undefined {
  const s = state as Record<string, unknown> | null | undefined
  if (s?.state === 'background') {
    return undefined
  }
  if (s?.state !== 'foreground') {
    return 'state.state must be background or foreground'
  }
  const ms = s.backgroundDurationMs
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? undefined : 'state.backgroundDurationMs must be a non-negative finite number'
}

// ------------------------------------------------------------------ debounce

/** Actions a debounce may skip; explicit commands (cleanup, force-reconnect) always run */
export function isDebounceable (action: RecoveryAction): action is 'offline' | 'probe' | 'restore' {
  return action === 'offline' || action === 'probe' || action === 'restore'
}

/** A custom processor's action of the same kind started less than `window` ms ago is skipped */
export function isDebounced (action: RecoveryAction, lastStartedAt: number | undefined, now: number, window: number): boolean {
  return isDebounceable(action) && window > 0 && lastStartedAt !== undefined && now - lastStartedAt < window
}

// ------------------------------------------------------------------ adapters

export type InterfaceKind = keyof TransportFlags | 'ignored'

/**
 * An interface by its name. Bridges and virtual links of containers and VMs are
 * ignored: they exist with no network at all and would make a machine look online.
 */
export function classifyInterface (name: string): InterfaceKind {
  if (/^(lo|docker|br-|veth|virbr|vboxnet|vmnet|lxc|lxd|cni|flannel|cali|podman)/.test(name)) {
    return 'ignored'
  }
  if (/^(wl|wlan|wifi)/.test(name)) {
    return 'wifi'
  }
  if (/^(en|eth)/.test(name)) {
    return 'ethernet'
  }
  if (/^(tun|tap|wg|utun|ppp|ipsec)/.test(name)) {
    return 'vpn'
  }
  if (/^(wwan|rmnet|ccmni|pdp_ip)/.test(name)) {
    return 'cellular'
  }
  return 'other'
}

/** One address of `os.networkInterfaces()` (the fields we read) */
export interface InterfaceAddress {
  address: string
  family: string | number
  internal: boolean
}

/** Link-local addresses exist on an interface with no network behind it */
function isUsable (addr: InterfaceAddress): boolean {
  if (addr.internal) {
    return false
  }
  const a = addr.address.toLowerCase()
  return !a.startsWith('169.254.') && !a.startsWith('fe80:')
}

/**
 * A snapshot's content from `os.networkInterfaces()`: available when some classified,
 * non-loopback interface has a usable address. Node cannot tell a metered link: a
 * cellular-only path counts as expensive, nothing as constrained.
 */
export function contentFromInterfaces (table: Record<string, readonly InterfaceAddress[] | undefined>): SnapshotContent {
  const transport: TransportFlags = { wifi: false, cellular: false, ethernet: false, vpn: false, other: false }
  let usable = false
  for (const [name, addrs] of Object.entries(table)) {
    const kind = classifyInterface(name)
    if (kind === 'ignored' || !(addrs ?? []).some(isUsable)) {
      continue
    }
    transport[kind] = true
    usable = true
  }
  return {
    availability: usable ? 'available' : 'unavailable',
    transport,
    isExpensive: transport.cellular && !transport.wifi && !transport.ethernet,
    isConstrained: false
  }
}

/** What the browser tells: `navigator.onLine` and the Network Information API when present */
export interface BrowserNetworkReading {
  onLine: boolean
  /** `navigator.connection.type`; desktop Chromium does not expose it */
  type?: string
  saveData?: boolean
}

export function contentFromBrowser (reading: BrowserNetworkReading): SnapshotContent {
  const transport: TransportFlags = { wifi: false, cellular: false, ethernet: false, vpn: false, other: false }
  const online = reading.onLine && reading.type !== 'none'
  if (online) {
    if (reading.type === 'wifi' || reading.type === 'cellular' || reading.type === 'ethernet') {
      transport[reading.type] = true
    } else {
      transport.other = true // wimax, bluetooth, mixed, unknown, or no type at all
    }
  }
  return {
    availability: online ? 'available' : 'unavailable',
    transport,
    isExpensive: transport.cellular,
    isConstrained: reading.saveData === true
  }
}
