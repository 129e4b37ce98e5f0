/**
 * The one clock timer of the reconnector: every lost peer waits in one deadline heap, keyed by
 * its next deadline (the end of its window, its next attempt or the end of its hold), and a
 * single timer is armed for the top of the heap. 1,000 held peers cost one timer.
 */

import { DeadlineHeap } from './deadline-heap.ts'
import { nextDeadline } from './policy.ts'
import type { PeerEntry } from './peer-entry.ts'
import type { Clock } from '@holdfast/interface'
import type { Logger } from '@libp2p/interface'

export class Schedule {
  private readonly heap = new DeadlineHeap<PeerEntry>()
  private timer?: unknown
  private timerAt?: number
  /** started and not paused: only then is the timer armed */
  private active = false

  /** `fire` is called for each peer whose deadline came, in deadline order */
  constructor (private readonly clock: Clock, private readonly log: Logger, private readonly fire: (entry: PeerEntry) => void) {}

  /** the peers waiting for a deadline */
  get size (): number {
    return this.heap.size
  }

  /** 0 or 1 */
  get timers (): number {
    return this.timer === undefined ? 0 : 1
  }

  /** Arms the timer (started, not paused) or disarms it; the deadlines are kept either way */
  setActive (active: boolean): void {
    this.active = active
    this.rearm()
  }

  /** Puts the peer where its next deadline says, or takes it out when it has none */
  reschedule (entry: PeerEntry): void {
    const deadline = nextDeadline(entry)
    if (deadline === undefined) {
      this.heap.delete(entry)
    } else {
      entry.due = deadline.at
      this.heap.upsert(entry)
    }
    this.rearm()
  }

  delete (entry: PeerEntry): void {
    this.heap.delete(entry)
    this.rearm()
  }

  /** After the `due` of many entries changed at once */
  reorder (): void {
    this.heap.heapify()
    this.rearm()
  }

  clear (): void {
    this.heap.clear()
    this.rearm()
  }

  /** Arms the clock timer for the earliest deadline, if it is not armed for it already */
  private rearm (): void {
    const at = this.active ? this.heap.peek()?.due : undefined
    if (at === this.timerAt && (at === undefined || this.timer !== undefined)) {
      return
    }
    if (this.timer !== undefined) {
      this.clock.clearTimeout(this.timer)
    }
    this.timer = undefined
    this.timerAt = at
    if (at !== undefined) {
      this.timer = this.clock.setTimeout(this.onTimer, Math.max(0, at - this.clock.now()))
    }
  }

  private readonly onTimer = (): void => {
    this.timer = undefined
    this.timerAt = undefined
    const now = this.clock.now()
    // a listener may pause the reconnector from inside a deadline: check before taking the next one out
    while (this.active) {
      const entry = this.heap.popDue(now)
      if (entry == null) {
        break
      }
      try {
        this.fire(entry)
      } catch (err) {
        this.log.error('handling a deadline of %p failed - %e', entry.peer, err)
      }
    }
    this.rearm()
  }
}
