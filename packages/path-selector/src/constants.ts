/**
 * Defaults and tuning constants, with why.
 */

import type { KeepAlivePreset, NatType, PresetName } from './policy.ts'

/**
 * Between two healthy paths of the same rank the challenger takes over once its RTT is lower
 * by at least this much. RTT samples of one path jitter by a few ms on any real link; without
 * a margin the pick would flap between two near-equal paths on every sample. iroh's path
 * selector uses the same value for the same reason.
 */
export const RTT_SWITCHING_MIN_MS = 5

/**
 * EWMA weight of a new RTT sample. 0.2 follows a real change within about ten samples while
 * one outlier moves the average by a fifth only.
 */
export const RTT_ALPHA = 0.2

/**
 * Consecutive heartbeat or stream failures that mark a path `failing`. One lost ping happens
 * on healthy links (a GC pause, a full buffer); two in a row rarely do.
 */
export const FAILURES_TO_DEMOTE = 2

/** The balanced preset: right for a machine on mains power behind an ordinary home or office NAT. */
export const DEFAULT_PRESET: PresetName = 'desktop'

/**
 * Keep-alive presets. Each keep-alive period is well below its idle timeout, so a NAT mapping
 * or a relay that drops idle paths after the idle timeout never sees the backup path idle that
 * long; each heartbeat, with two failures to demote, finds a dead path in two intervals.
 */
export const PRESETS: Readonly<Record<PresetName, Readonly<KeepAlivePreset>>> = Object.freeze({
  /** battery first: few wake-ups; an idle timeout of 2 min, the shortest UDP mapping lifetime NATs are asked to keep (RFC 4787) */
  mobile: Object.freeze({ idleTimeoutMs: 120_000, heartbeatIntervalMs: 30_000, keepAlivePeriodMs: 60_000 }),
  /** balanced: a dead path found within 30 s; a keep-alive at half the 5 min idle timeout */
  desktop: Object.freeze({ idleTimeoutMs: 300_000, heartbeatIntervalMs: 15_000, keepAlivePeriodMs: 150_000 }),
  /** stability first: a dead path found within 20 s; servers and their NATs keep idle paths 10 min */
  server: Object.freeze({ idleTimeoutMs: 600_000, heartbeatIntervalMs: 10_000, keepAlivePeriodMs: 300_000 }),
  /** fast detection, for tests */
  test: Object.freeze({ idleTimeoutMs: 30_000, heartbeatIntervalMs: 5_000, keepAlivePeriodMs: 15_000 })
})

/** Without AutoNAT or the app telling us, we don't know our NAT: the matrix then says "try". */
export const DEFAULT_NAT: NatType = 'unknown'

/** Try a direct path whenever only relayed ones exist: it is faster and costs the relay nothing. */
export const UPGRADE = true

/**
 * Keep the relayed connection open, tagged and protected, after an upgrade: when the direct
 * path dies the traffic moves to it at once instead of waiting for a new relayed connection.
 */
export const KEEP_RELAY_BACKUP = true

/**
 * An upgrade attempt (WebRTC offer/answer over the relay, ICE, DTLS, noise) that has not
 * finished after this long has failed. ICE on real networks needs a few seconds; 15 s covers
 * a slow mobile link without keeping a dead attempt around.
 */
export const UPGRADE_TIMEOUT_MS = 15_000

/**
 * Retry delays of the upgrade after a direct path died and of the relay-reservation watchdog:
 * 1 s doubling to 60 s, the reconnector's backoff, so a node recovering from one outage does
 * not retry its paths on a different rhythm than its peers.
 */
export const RETRY_INITIAL_DELAY_MS = 1_000
export const RETRY_MAX_DELAY_MS = 60_000

/**
 * Upgrade attempts after a fallback before staying on the relay until the peer reconnects:
 * with the default delays the five attempts wait 16 s in all, long enough for a network
 * hiccup and short enough not to spend a relay's bandwidth on signalling that keeps failing.
 */
export const UPGRADE_MAX_ATTEMPTS = 5

/** Value of the `relay-backup` peer-store tag: high enough that libp2p's pruner keeps the peer over untagged ones. */
export const RELAY_BACKUP_TAG_VALUE = 50

/** libp2p ping's protocol, used when the ping service does not tell us its own */
export const DEFAULT_PING_PROTOCOL = '/ipfs/ping/1.0.0'

/** Bytes of one ping, libp2p ping's size */
export const PING_LENGTH = 32

/**
 * The defaults of every init option that has a plain value. The three options that are
 * functions or objects (`natOf`, `selectPath`, `clock`) default to `() => 'unknown'`,
 * the exported `selectPath` and the system clock.
 */
export const defaults = {
  preset: DEFAULT_PRESET,
  upgrade: UPGRADE,
  keepRelayBackup: KEEP_RELAY_BACKUP,
  rttAlpha: RTT_ALPHA,
  failuresToDemote: FAILURES_TO_DEMOTE,
  localNat: DEFAULT_NAT,
  upgradeTimeoutMs: UPGRADE_TIMEOUT_MS,
  upgradeMaxAttempts: UPGRADE_MAX_ATTEMPTS,
  retryInitialDelayMs: RETRY_INITIAL_DELAY_MS,
  retryMaxDelayMs: RETRY_MAX_DELAY_MS
} as const
