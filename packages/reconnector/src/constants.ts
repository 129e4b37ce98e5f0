/**
 * Defaults, with why. The window, the hold, the backoff and the attempt limit are the jitter
 * tolerance of a connection model designed for peers on mobile networks, where short drops
 * are the normal case.
 */

/** No reconnect within 5 s of a disconnect: most mobile flaps (a Wi-Fi hand-over, a lift) end within 5 s. */
export const TOLERANCE_WINDOW_MS = 5_000

/** A lost peer's state is kept 30 s: after that the app should be told it is offline. */
export const STATE_HOLD_TIME_MS = 30_000

/** The first retry waits 1 s: the peer had time to come back by itself during the window. */
export const INITIAL_DELAY_MS = 1_000

/**
 * When both ends of a dropped connection run a reconnector, both windows end together and both
 * first attempts fall in the same 0.8–1.2 s band: about one flap in four, the two dials cross,
 * the node ends up with two connections, and the cleanup broadcaster closes one of them with
 * the streams an app had just opened on it. The end whose peer ID sorts higher waits one
 * initial delay more, so the other's dial is usually there first.
 */
export const CROSSING_DELAY_MS = 1_000

/** Retries back off to at most 60 s: a peer gone that long is dialed once a minute, not hammered. */
export const MAX_DELAY_MS = 60_000

/** Each retry waits twice as long as the one before. */
export const MULTIPLIER = 2

/** ±20 %, so peers dropped together (one relay restarting) do not redial in lock-step. */
export const JITTER = 0.2

/** Give up after 5 failed attempts: with the defaults, the hold runs out first, about 30 s after the drop. */
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

/** The defaults of `reconnector(init)`: every init option that has a default value */
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
