/**
 * All time in holdfast goes through a `Clock`, so backoff, grace periods and settle windows
 * can be tested on fake time without sleeping.
 */
export interface Clock {
  /** milliseconds; only differences between two readings are meaningful */
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/**
 * The real clock. `now()` has sub-millisecond resolution (`performance.now()` based) so
 * durations such as `CleanupReport.durationMs` are meaningful below 1 ms.
 */
export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => { globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>) }
}
