/**
 * Defaults, with why. The durations and counts are seed 004's JitterTolerance table
 * (shared/seeds/004, "抖动容忍"); spec 04 keeps them.
 */

/** Seed 004: "no reconnect within 5 s of a disconnect"; most mobile flaps (Wi-Fi hand-over, a lift) end sooner. */
export const TOLERANCE_WINDOW_MS = 5_000

/** Seed 004: a lost peer's state is kept 30 s; after that the app should be told it is offline. */
export const STATE_HOLD_TIME_MS = 30_000

/** Seed 004: the first retry waits 1 s. */
export const INITIAL_DELAY_MS = 1_000

/**
 * When both ends of a dropped connection run a reconnector, both windows end together and both
 * first attempts fall in the same 0.8–1.2 s band: about one flap in four, the two dials cross,
 * the node ends up with two connections, and the cleanup broadcaster closes one of them with
 * the streams an app had just opened on it. The end whose peer ID sorts higher waits one
 * initial delay more, so the other's dial is usually there first.
 */
export const CROSSING_DELAY_MS = 1_000

/** Seed 004: retries back off to at most 60 s. */
export const MAX_DELAY_MS = 60_000

/** Seed 004: each retry waits twice as long as the one before. */
export const MULTIPLIER = 2

/** Seed 004: ±20 %, so peers dropped together (one relay restarting) do not redial in lock-step. */
export const JITTER = 0.2

/** Seed 004: give up after 5 attempts. */
export const MAX_ATTEMPTS = 5

/**
 * libp2p's `KEEP_ALIVE` (`@libp2p/interface`): any peer-store tag starting with it makes
 * libp2p's reconnect queue redial the peer. Repeated here so policy.ts stays free of libp2p
 * imports; a test checks the two are equal.
 */
export const KEEP_ALIVE_PREFIX = 'keep-alive'

/**
 * While holdfast holds a peer, its `keep-alive*` tags are renamed with this prefix (value kept,
 * so libp2p's pruner ranks the peer the same) and libp2p's reconnect queue no longer sees them.
 */
export const PARKED_TAG_PREFIX = 'holdfast-parked:'

/** setTimeout's limit (2^31 - 1 ms, ~24.8 days): longer durations would fire at once */
export const MAX_DURATION_MS = 2_147_483_647

/** The defaults, in one place (seed 004): every option of the config a reconnector runs with */
export const defaults = {
  toleranceWindow: TOLERANCE_WINDOW_MS,
  crossingDelay: CROSSING_DELAY_MS,
  stateHoldTime: STATE_HOLD_TIME_MS,
  initialDelay: INITIAL_DELAY_MS,
  maxDelay: MAX_DELAY_MS,
  multiplier: MULTIPLIER,
  jitter: JITTER,
  maxAttempts: MAX_ATTEMPTS
} as const
