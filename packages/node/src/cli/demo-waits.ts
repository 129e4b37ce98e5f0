/**
 * How the demo's steps wait: for the first event a step is after, or for every one of a kind,
 * always bounded by the step's signal.
 */

/** what nextEvent and collect listen on: libp2p's node and every holdfast service */
interface Listenable {
  addEventListener(type: string, listener: (event: CustomEvent<any>) => void): void
  removeEventListener(type: string, listener: (event: CustomEvent<any>) => void): void
}

/**
 * Resolves with the detail of the first `type` event on `target` that `accept` takes; rejects
 * when `signal` aborts (the step's time bound).
 */
export async function nextEvent<Detail> (target: Listenable, type: string, accept: (detail: Detail) => boolean, signal: AbortSignal): Promise<Detail> {
  signal.throwIfAborted()
  return new Promise((resolve, reject) => {
    const listener = (event: CustomEvent<Detail>): void => {
      if (accept(event.detail)) {
        done()
        resolve(event.detail)
      }
    }
    const onAbort = (): void => {
      done()
      reject(new Error(`no ${type} event before the step's time limit`))
    }
    const done = (): void => {
      target.removeEventListener(type, listener)
      signal.removeEventListener('abort', onAbort)
    }
    target.addEventListener(type, listener)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** the detail of every `type` event that `accept` takes, and when it came (performance.now()), until `stop()` */
export function collect<Detail> (target: Listenable, type: string, accept: (detail: Detail) => boolean): { seen: Detail[], at: number[], stop(): void } {
  const seen: Detail[] = []
  const at: number[] = []
  const listener = (event: CustomEvent<Detail>): void => {
    if (accept(event.detail)) {
      seen.push(event.detail)
      at.push(performance.now())
    }
  }
  target.addEventListener(type, listener)
  return { seen, at, stop: () => { target.removeEventListener(type, listener) } }
}
