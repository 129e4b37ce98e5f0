/**
 * Defaults and tuning constants, with why. "seed 003" / "seed 004" point at the design
 * documents in shared/seeds.
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
 * EWMA weight of a new RTT sample (spec 03). 0.2 follows a real change within ~10 samples
 * while one outlier moves the average by a fifth only.
 */
export const RTT_ALPHA = 0.2

/**
 * Consecutive heartbeat or stream failures that mark a path `failing` (spec 03). One lost ping
 * happens on healthy links (a GC pause, a full buffer); two in a row rarely do.
 */
export const FAILURES_TO_DEMOTE = 2

/** Seed 003 §4.7's "Desktop" preset: balanced. */
export const DEFAULT_PRESET: PresetName = 'desktop'

/**
 * Keep-alive presets, seed 003 §4.7 / seed 004 "连接保活". Desktop's keep-alive period is
 * 150 s (seed 003's table; seed 004 rounds it to 2 min).
 */
export const PRESETS: Readonly<Record<PresetName, Readonly<KeepAlivePreset>>> = Object.freeze({
  /** battery first */
  mobile: Object.freeze({ idleTimeoutMs: 120_000, heartbeatIntervalMs: 30_000, keepAlivePeriodMs: 60_000 }),
  /** balanced */
  desktop: Object.freeze({ idleTimeoutMs: 300_000, heartbeatIntervalMs: 15_000, keepAlivePeriodMs: 150_000 }),
  /** stability first */
  server: Object.freeze({ idleTimeoutMs: 600_000, heartbeatIntervalMs: 10_000, keepAlivePeriodMs: 300_000 }),
  /** fast detection, for tests */
  test: Object.freeze({ idleTimeoutMs: 30_000, heartbeatIntervalMs: 5_000, keepAlivePeriodMs: 15_000 })
})

/** Without AutoNAT or the app telling us, we don't know our NAT: the matrix then says "try". */
export const DEFAULT_NAT: NatType = 'unknown'

/** Try a direct path whenever only relayed ones exist (spec 03). */
export const UPGRADE = true

/** Keep the relayed connection open, tagged and protected, after an upgrade (seed 003 §4.6, seed 004). */
export const KEEP_RELAY_BACKUP = true

/**
 * An upgrade attempt (WebRTC offer/answer over the relay, ICE, DTLS, noise) that has not
 * finished after this long has failed. ICE on real networks needs a few seconds; 15 s covers
 * a slow mobile link without keeping a dead attempt around.
 */
export const UPGRADE_TIMEOUT_MS = 15_000

/**
 * Retry delays of the upgrade after a direct path died and of the relay-reservation watchdog:
 * 1 s doubling to 60 s (seed 004's reconnect backoff).
 */
export const RETRY_INITIAL_DELAY_MS = 1_000
export const RETRY_MAX_DELAY_MS = 60_000

/** Upgrade attempts after a fallback before staying on the relay until the next reconnect (seed 004: 5 tries). */
export const UPGRADE_MAX_ATTEMPTS = 5

/** Value of the `relay-backup` peer-store tag: high enough that libp2p's pruner keeps the peer over untagged ones. */
export const RELAY_BACKUP_TAG_VALUE = 50
