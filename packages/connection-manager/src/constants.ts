/**
 * The defaults, and why each is what it is.
 */

/**
 * A batch trim stops at this many connections: about a hundred peers is enough for a DHT
 * routing table and a few gossip meshes on a desktop node, with room to spare.
 */
export const LOW_WATER = 100

/**
 * More connections than this starts a trim. Twice `LOW_WATER`, so one trim frees room for a
 * hundred arrivals before the next; still below libp2p's own cap in Node (300), which then only
 * acts as an emergency brake.
 */
export const HIGH_WATER = 200

/**
 * A peer first connected less than this ago is never trimmed: 30 s lets a new peer finish
 * identify, an authentication handshake and its first exchange before it can be judged by its
 * score.
 */
export const GRACE_PERIOD = 30_000

/**
 * At most one automatic trim per period: a burst of arrivals above `highWater` costs one trim,
 * not one per connection. 10 s is go-libp2p's silence period.
 */
export const SILENCE_PERIOD = 10_000

/**
 * `trimMode: 'incremental'` evicts down to `highWater - hysteresis`. 10 keeps the node near its
 * high watermark under churn (no sawtooth) while a trim still frees room for ten arrivals.
 * Capped at `highWater - lowWater` so an incremental trim never goes below `lowWater`.
 */
export const HYSTERESIS = 10

/**
 * Idle timeouts by platform: a phone closes idle connections soonest, to save its radio and
 * battery; a server keeps them longest, because peers come back to it; `test` keeps test runs
 * short. `desktop` is the default.
 */
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

/**
 * The default score's bonuses. An outbound connection is one this node chose to make (+10); an
 * open stream means the peer is in use right now (+20), which outweighs it.
 */
export const OUTBOUND_BONUS = 10
export const STREAMS_BONUS = 20

/**
 * The peer-store tag that mirrors a protection, so libp2p's built-in pruner (which ranks
 * connections by the sum of peer-store tag values) keeps protected peers last. 100 is the
 * highest value a peer-store tag takes. Not `keep-alive*`: that prefix makes libp2p redial.
 */
export const PROTECTED_STORE_TAG = 'holdfast-protected'
export const PROTECTED_STORE_TAG_VALUE = 100

/**
 * The defaults of the numeric and mode options, in one place. `score` defaults to
 * `defaultScore` and `clock` to the system clock.
 */
export const defaults = {
  lowWater: LOW_WATER,
  highWater: HIGH_WATER,
  gracePeriod: GRACE_PERIOD,
  silencePeriod: SILENCE_PERIOD,
  trimMode: 'batch',
  /** capped at `highWater - lowWater` */
  hysteresis: HYSTERESIS,
  maxInbound: Infinity,
  maxOutbound: Infinity,
  idleTimeout: IDLE_TIMEOUT
} as const
