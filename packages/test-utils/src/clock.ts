import { withGlobal } from '@sinonjs/fake-timers'
import type { Clock } from '@holdfast/interface'

export interface FakeClock extends Clock {
  /** advance time, running due timers synchronously */
  tick(ms: number): void
  /** advance time, letting promises settle between timers */
  tickAsync(ms: number): Promise<void>
  /** timers scheduled and not yet run or cleared */
  countTimers(): number
}

/**
 * A holdfast `Clock` on @sinonjs/fake-timers. Nothing global is replaced: only code handed
 * this clock sees fake time, so libp2p itself keeps running on real time.
 */
export function createFakeClock (start = 1_000_000): FakeClock {
  const clock = withGlobal(globalThis).createClock(start)
  return {
    now: () => clock.now,
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
    clearTimeout: (handle) => { clock.clearTimeout(handle as number) },
    tick: (ms) => { clock.tick(ms) },
    tickAsync: async (ms) => { await clock.tickAsync(ms) },
    countTimers: () => clock.countTimers()
  }
}
