/**
 * One way to wait for an event in tests and benchmarks, whatever dispatches it: a libp2p node,
 * a holdfast service or any other main-event target (`addEventListener`), or the cleanup
 * broadcaster (`subscribe`).
 */

import { TimeoutError } from '@libp2p/interface'
import type { CleanupBroadcaster, HoldfastEvents, HoldfastEventType } from '@holdfast/interface'
import type { Libp2p, Libp2pEvents } from '@libp2p/interface'

export interface OnceEventOptions<Detail> {
  /** the first event whose detail passes it resolves the wait; a throw rejects it */
  filter?(detail: Detail): boolean
  /** aborting it rejects the wait with the signal's reason */
  signal?: AbortSignal
  /** ms; past it the wait rejects with libp2p's `TimeoutError` */
  timeout?: number
}

/** A filter alone, or the options */
export type OnceEventArg<Detail> = ((detail: Detail) => boolean) | OnceEventOptions<Detail>

/** The part of the cleanup broadcaster `onceEvent` uses */
export type Subscribable = Pick<CleanupBroadcaster, 'subscribe'>

/**
 * Resolves with the detail of the first event of `type` that passes the filter. The listener
 * (or subscription) is gone once the wait settles, whichever way: resolved, timed out or
 * aborted. The third argument is the filter alone or `{ filter, signal, timeout }`.
 *
 * The detail is typed for a libp2p node's events and for the holdfast events (of a holdfast
 * service or the broadcaster); on any other event target, type the filter's parameter.
 *
 * @example
 *
 * ```ts
 * const gone = onceEvent(node, 'peer:disconnect', p => p.equals(remote))
 * const upgraded = onceEvent(node.services.paths, 'path:upgraded', { filter: d => d.peer.equals(remote), timeout: 5_000 })
 * const cleaned = onceEvent(broadcaster, 'peer:cleaned', { signal })
 * ```
 */
export async function onceEvent<K extends keyof Libp2pEvents> (target: Libp2p<any>, type: K, arg?: OnceEventArg<Libp2pEvents[K]['detail']>): Promise<Libp2pEvents[K]['detail']>
export async function onceEvent<K extends HoldfastEventType> (target: EventTarget | Subscribable, type: K, arg?: OnceEventArg<HoldfastEvents[K]>): Promise<HoldfastEvents[K]>
export async function onceEvent<Detail = unknown> (target: EventTarget, type: string, arg?: OnceEventArg<Detail>): Promise<Detail>
export async function onceEvent (target: EventTarget | Subscribable, type: string, arg: OnceEventArg<any> = {}): Promise<unknown> {
  const { filter = () => true, signal, timeout } = typeof arg === 'function' ? { filter: arg } : arg
  signal?.throwIfAborted()
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const settle = (): void => {
      stopListening()
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
    const onEvent = (event: { detail: unknown }): void => {
      try {
        if (!filter(event.detail)) {
          return
        }
      } catch (err) {
        settle()
        reject(err)
        return
      }
      settle()
      resolve(event.detail)
    }
    const onAbort = (): void => {
      settle()
      reject(signal?.reason)
    }
    const stopListening = listen(target, type, onEvent)
    signal?.addEventListener('abort', onAbort, { once: true })
    if (timeout != null) {
      timer = setTimeout(() => {
        settle()
        reject(new TimeoutError(`no ${type} event within ${timeout} ms`))
      }, timeout)
    }
  })
}

/** Adds the listener (or subscription) and returns what removes it */
function listen (target: EventTarget | Subscribable, type: string, onEvent: (event: { detail: unknown }) => void): () => void {
  if ('addEventListener' in target) {
    const listener = (event: Event): void => { onEvent(event as CustomEvent) }
    target.addEventListener(type, listener)
    return () => { target.removeEventListener(type, listener) }
  }
  return target.subscribe(type as HoldfastEventType, onEvent)
}
