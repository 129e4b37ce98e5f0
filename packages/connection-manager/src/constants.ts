/**
 * Defaults, with why. Numbers marked "seed 003" / "seed 004" come from the design documents in
 * shared/seeds.
 */

/** Trim stops at this many connections (seed 004: `LowWater = 100`). */
export const LOW_WATER = 100

/** More connections than this starts a trim (seed 004: `HighWater = 200`). */
export const HIGH_WATER = 200

/** A peer first connected less than this ago is never trimmed (seed 003: `GracePeriod: 30s`). */
export const GRACE_PERIOD = 30_000

/**
 * At most one automatic trim per period: a burst of arrivals above `highWater` costs one trim,
 * not one per connection (go-libp2p's `silencePeriod`, 10 s).
 */
export const SILENCE_PERIOD = 10_000

/**
 * `trimMode: 'incremental'` evicts down to `highWater - hysteresis`. 10 keeps the node near its
 * high watermark under churn (no sawtooth) while a trim still frees room for ten arrivals.
 * Capped at `highWater - lowWater` so an incremental trim never goes below `lowWater`.
 */
export const HYSTERESIS = 10

/** Seed 003's idle timeouts per platform preset; `desktop` is the default. */
export const IDLE_PRESETS = {
  mobile: 2 * 60_000,
  desktop: 5 * 60_000,
  server: 10 * 60_000,
  test: 30_000
} as const

export const IDLE_TIMEOUT = IDLE_PRESETS.desktop

/**
 * The idle sweep runs this many times per `idleTimeout`: one timer for all connections instead
 * of one per connection, at the price of closing up to `idleTimeout / 4` late.
 */
export const IDLE_SWEEPS_PER_TIMEOUT = 4

/** Score bonuses of seed 004's `CalculateScore` */
export const OUTBOUND_BONUS = 10
export const STREAMS_BONUS = 20

/**
 * The peer-store tag that mirrors a protection, so libp2p's built-in pruner (which ranks
 * connections by the sum of peer-store tag values) keeps protected peers last. 100 is the
 * highest value a peer-store tag takes. Not `keep-alive*`: that prefix makes libp2p redial.
 */
export const PROTECTED_STORE_TAG = 'holdfast-protected'
export const PROTECTED_STORE_TAG_VALUE = 100
