/**
 * Defaults, with why each value is what it is.
 */

/**
 * After a peer's cleanup, new work for it fails fast for this long. 0: the mark is cleared as
 * soon as the chain has run, so a reconnecting peer is usable at once. Raise it when an app
 * would otherwise start new work on a peer whose old state is still being torn down by its own
 * layers (a cache refilled from a connection that is about to close).
 */
export const CLOSING_WINDOW_MS = 0

/** The conditions a peer needs before `whenReady` resolves: the broadcaster marks `connected` itself. */
export const READY_CONDITIONS: readonly string[] = Object.freeze(['connected'])

/**
 * Close an older connection of the same path kind to a peer when a newer one opens. Two
 * connections of one kind only split a peer's streams, and a newer one usually means the
 * older is on a path that is going away (a network change, a re-dial after a NAT rebinding).
 */
export const REPLACE_CONNECTIONS = true

/**
 * `timeout()` in `productionChain()`: an async handler still running after 5 s is flagged.
 * Whole operations such as a request commonly get 30 s; a handler of a connection event only
 * updates local state and should be done in a small fraction of that.
 */
export const PRODUCTION_HANDLER_BUDGET_MS = 5_000

/**
 * The defaults of the init options, in one place. `middleware` (`[recovery()]`) and `clock`
 * (the system clock) have defaults too, but a middleware holds state, so each service gets its
 * own: they are made in `configOf`, not shared from here.
 */
export const defaults = {
  closingWindowMs: CLOSING_WINDOW_MS,
  readyConditions: READY_CONDITIONS,
  replaceConnections: REPLACE_CONNECTIONS
} as const
