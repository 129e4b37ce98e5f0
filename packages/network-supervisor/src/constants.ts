/**
 * Defaults, with why. The settle window, the result and probe timeouts, the long-background
 * threshold and the debounce window are those of the network-event module of a Rust WebRTC
 * runtime that handles the same platform callbacks on phones.
 */

/**
 * Events arriving within this long of the first one form one batch: a Wi-Fi → cellular
 * hand-over, a VPN re-attach or an off-then-on flap reaches the app as 2–5 callbacks within a
 * few hundred ms.
 */
export const SETTLE_WINDOW_MS = 400

/**
 * A caller waits at most this long for its batch's result: platform hooks (iOS background
 * tasks, Android receivers) must return quickly; the action itself still finishes.
 */
export const RESULT_TIMEOUT_MS = 5_000

/** Each ping of a probe gets this long: a live path on a phone answers well within a second. */
export const PROBE_TIMEOUT_MS = 1_000

/**
 * A foreground after at least this long in the background forces a reconnect instead of a
 * probe: after 30 s, mobile OSes have usually frozen the sockets and NAT bindings have expired.
 */
export const LONG_BACKGROUND_THRESHOLD_MS = 30_000

/**
 * A custom processor's offline / probe / restore of the same kind is not run again within
 * this long, so a platform that repeats itself does not repeat the work. The default processor
 * is not debounced: the settle window already coalesces a burst.
 */
export const DEBOUNCE_WINDOW_MS = 2_000

/**
 * The Node adapter reads `os.networkInterfaces()` this often: Node has no change event, and
 * reading the table costs ~50 µs, so 2 s keeps detection well inside a human's patience.
 */
export const POLL_INTERVAL_MS = 2_000

/**
 * libp2p's circuit-relay transport tags the relays it holds reservations on with this
 * keep-alive tag; with holdfast's `relay-active` it tells which peers are relays to re-dial on
 * restore.
 */
export const CIRCUIT_RELAY_TAG = 'keep-alive-circuit-relay'

/** The defaults of `networkSupervisor(init)`: every init option that has a default value */
export const defaults = {
  settleWindow: SETTLE_WINDOW_MS,
  resultTimeout: RESULT_TIMEOUT_MS,
  probeTimeout: PROBE_TIMEOUT_MS,
  longBackgroundThreshold: LONG_BACKGROUND_THRESHOLD_MS,
  debounceWindow: DEBOUNCE_WINDOW_MS
} as const
