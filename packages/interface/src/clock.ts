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

/**
 * The timers a service started on its clock and has not yet seen fire or cleared, so
 * `internalSizes().timers` can report them and `stop()` can clear them all at once.
 */
export class TrackedTimers {
  private readonly clock: Clock
  private readonly handles = new Set<unknown>()

  constructor (clock: Clock) {
    this.clock = clock
  }

  /** timers pending now */
  get size (): number {
    return this.handles.size
  }

  set (fn: () => void, ms: number): unknown {
    const handle = this.clock.setTimeout(() => {
      this.handles.delete(handle)
      fn()
    }, ms)
    this.handles.add(handle)
    return handle
  }

  /** clears the timer if it is still pending; unknown or fired handles are ignored */
  clear (handle: unknown): void {
    if (handle != null && this.handles.delete(handle)) {
      this.clock.clearTimeout(handle)
    }
  }

  clearAll (): void {
    for (const handle of this.handles) {
      this.clock.clearTimeout(handle)
    }
    this.handles.clear()
  }
}
