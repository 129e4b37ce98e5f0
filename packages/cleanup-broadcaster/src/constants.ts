/**
 * Defaults, with why. Numbers marked "seed 000" / "seed 002" come from the design documents
 * in shared/seeds.
 */

/**
 * After a peer's cleanup, new work for it fails fast for this long. 0: the mark is cleared as
 * soon as the chain has run, so a reconnecting peer is usable at once; raise it when an app
 * would otherwise race a half-torn-down peer (seed 000's `closing_peers`).
 */
export const CLOSING_WINDOW_MS = 0

/** The conditions a peer needs before `whenReady` resolves: the broadcaster marks `connected` itself. */
export const READY_CONDITIONS: readonly string[] = ['connected']

/**
 * `timeout()` in `productionChain()`: an async handler still running after 5 s is flagged.
 * Seed 002 uses 30 s for whole operations; handlers of connection events should be far quicker.
 */
export const PRODUCTION_HANDLER_BUDGET_MS = 5_000

/** Replace older connections of the same path kind to a peer (seed 000's "new offer" trigger). */
export const REPLACE_CONNECTIONS = true
