/**
 * The typed multi-subscriber stream: subscribe / publish / middleware / stats.
 * Knows nothing of libp2p; the broadcaster feeds it.
 */

import { InvalidArgumentError, UnknownEventTypeError, checkOptions, isHoldfastEventType } from '@holdfast/interface'
import type { AnyEventHandler, BroadcasterStats, Delivery, EventHandler, HoldfastEvent, HoldfastEvents, HoldfastEventType, Middleware, MiddlewareContext, SubscribeOptions } from '@holdfast/interface'

type AnyHandler = (event: HoldfastEvent) => void | Promise<void>

const WILDCARD = '*'

export class EventStream {
  /** copy-on-write arrays: a handler that (un)subscribes during delivery does not disturb it */
  private readonly handlers = new Map<string, AnyHandler[]>()
  private readonly middleware: Middleware[] = []
  private run: (delivery: Delivery) => void
  private readonly counts = new Map<string, number>()
  private readonly droppedBy: Record<string, number> = {}
  private totalEvents = 0
  private dropped = 0
  private activeHandlers = 0
  /** abort listeners added to subscribers' signals */
  private signalListeners = 0
  handlerErrors = 0
  slowHandlers = 0

  constructor (private readonly context: MiddlewareContext) {
    this.run = this.deliver
  }

  subscribe<K extends HoldfastEventType>(type: K | '*', handler: EventHandler<K> | AnyEventHandler, options?: SubscribeOptions): () => void {
    if (type !== WILDCARD && !isHoldfastEventType(type)) {
      throw new UnknownEventTypeError(String(type))
    }
    if (typeof handler !== 'function') {
      throw new InvalidArgumentError('handler must be a function', 'handler')
    }
    const opts = checkOptions(options)
    if (opts.signal?.aborted === true) {
      return () => {}
    }

    const fn = handler as AnyHandler
    this.handlers.set(type, [...(this.handlers.get(type) ?? []), fn])
    this.activeHandlers++

    let subscribed = true
    const signal = opts.signal
    const unsubscribe = (): void => {
      if (!subscribed) {
        return
      }
      subscribed = false
      this.activeHandlers--
      const remaining = (this.handlers.get(type) ?? []).filter(h => h !== fn)
      if (remaining.length === 0) {
        this.handlers.delete(type)
      } else {
        this.handlers.set(type, remaining)
      }
      if (signal != null) {
        signal.removeEventListener('abort', unsubscribe)
        this.signalListeners--
      }
    }
    if (signal != null) {
      signal.addEventListener('abort', unsubscribe, { once: true })
      this.signalListeners++
    }
    return unsubscribe
  }

  /** Runs the chain and delivers synchronously. Throws only for bad input. */
  publish<K extends HoldfastEventType>(type: K, detail: HoldfastEvents[K]): void {
    if (!isHoldfastEventType(type)) {
      throw new UnknownEventTypeError(String(type))
    }
    if (detail == null || typeof detail !== 'object') {
      throw new InvalidArgumentError(`the detail of ${type} must be an object`, 'detail')
    }
    this.totalEvents++
    this.counts.set(type, (this.counts.get(type) ?? 0) + 1)

    const delivery: Delivery = { type, detail, time: this.context.clock.now(), delivered: false } as unknown as Delivery
    try {
      this.run(delivery)
    } catch (err) {
      // a throwing middleware must not turn publish into a throwing call for the publisher
      this.context.reportHandlerError(err, delivery)
    }
    if (!delivery.delivered) {
      this.dropped++
    }
  }

  use (middleware: Middleware): void {
    if (typeof middleware !== 'function') {
      throw new InvalidArgumentError('middleware must be a function', 'middleware')
    }
    middleware.attach?.(this.context)
    this.middleware.push(middleware)
    this.run = this.compose()
  }

  has (name: string): boolean {
    return this.middleware.some(m => m.middlewareName === name)
  }

  stats (): BroadcasterStats {
    return {
      totalEvents: this.totalEvents,
      byType: Object.fromEntries(this.counts),
      activeHandlers: this.activeHandlers,
      dropped: this.dropped,
      droppedBy: { ...this.droppedBy },
      handlerErrors: this.handlerErrors,
      slowHandlers: this.slowHandlers
    }
  }

  listenerCount (): number {
    return this.signalListeners
  }

  /** Drops every subscription and detaches the middleware (service stop). */
  clear (): void {
    for (const m of this.middleware) {
      m.detach?.()
    }
    this.handlers.clear()
    this.activeHandlers = 0
  }

  /**
   * Builds the chain once per `use()`, not per event. A middleware that returns without
   * calling `next` drops the event; the drop is attributed to it.
   */
  private compose (): (delivery: Delivery) => void {
    let run: (delivery: Delivery) => void = this.deliver
    for (let i = this.middleware.length - 1; i >= 0; i--) {
      const middleware = this.middleware[i]
      const name = middleware.middlewareName ?? `middleware-${i}`
      const next = run
      run = (delivery) => {
        let passed = false
        middleware(delivery, () => {
          passed = true
          next(delivery)
        })
        if (!passed) {
          this.droppedBy[name] = (this.droppedBy[name] ?? 0) + 1
        }
      }
    }
    return run
  }

  private readonly deliver = (delivery: Delivery): void => {
    if (delivery.delivered) {
      return // next() called twice
    }
    delivery.delivered = true
    const typed = this.handlers.get(delivery.type)
    if (typed != null) {
      this.callAll(typed, delivery)
    }
    const wildcard = this.handlers.get(WILDCARD)
    if (wildcard != null) {
      this.callAll(wildcard, delivery)
    }
  }

  private callAll (handlers: AnyHandler[], delivery: Delivery): void {
    for (let i = 0; i < handlers.length; i++) {
      try {
        const result = handlers[i](delivery)
        if (result != null && typeof result.then === 'function') {
          (delivery.pending ??= []).push(result)
        }
      } catch (err) {
        (delivery.errors ??= []).push(err)
      }
    }
  }
}
