/**
 * What several benchmarks set up the same way: libp2p nodes on TCP 127.0.0.1 that nothing
 * throttles or pings, realm members reachable only through a relay, the wait for a member, and
 * the child processes a benchmark drives over IPC.
 */

import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createNode, onceEvent } from '@holdfast/test-utils'
import { relayedPeer } from '@holdfast/test-utils/infrastructure'
import type { Realm } from '@holdfast/realm'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Libp2pOptions, ServiceFactoryMap } from 'libp2p'
import type { ChildProcess } from 'node:child_process'

/**
 * libp2p drops a host's inbound connections above 5 a second (the dialer then sees a misleading
 * EncryptionFailedError timeout); every connection here comes from 127.0.0.1, and a benchmark
 * opens one every few ms
 */
export const UNTHROTTLED = { inboundConnectionThreshold: Number.MAX_SAFE_INTEGER }

type Node<S> = Libp2p<S & { identify: unknown, ping: unknown }>

/**
 * A started node on TCP 127.0.0.1 with no inbound rate limit and no connection monitor, so no
 * ping lands inside a timed window
 */
export async function loopbackNode<S extends Record<string, unknown> = Record<string, unknown>> (services?: ServiceFactoryMap<S>, config: Partial<Libp2pOptions> = {}): Promise<Node<S>> {
  return createNode({ transport: 'tcp', services, config: { connectionMonitor: { enabled: false }, connectionManager: UNTHROTTLED, ...config } })
}

/** A started node reachable only through its reservation on `relay` (behind NAT: the relay is the only way in), with no inbound rate limit */
export async function behindRelay<S extends Record<string, unknown>> (relay: Libp2p<any>, services: ServiceFactoryMap<S>): Promise<Node<S>> {
  return relayedPeer(relay, { reach: 'relay', services, config: { connectionManager: UNTHROTTLED } })
}

/** performance.now() once `node`'s realm lists `peer` as a member (at once when it already does) */
export async function memberAt (node: Libp2p<{ realm: Realm }>, peer: PeerId): Promise<number> {
  if (!node.services.realm.isMember(peer)) {
    await onceEvent(node.services.realm, 'member:joined', d => d.peer.equals(peer))
  }
  return performance.now()
}

/** A request to a child process; `exit` ends it */
export interface Request {
  type: string
}

/** One child process spoken to over IPC, one request and one reply at a time (its side is `serve`) */
export class Child {
  private readonly child: ChildProcess
  private readonly replies: Array<(message: any) => void> = []

  /** `file` relative to the caller's `base` URL (its `import.meta.url`) */
  constructor (file: string, base: string, execArgv: string[] = []) {
    this.child = fork(fileURLToPath(new URL(file, base)), [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', message => { this.replies.shift()?.(message) })
  }

  /** the child's reply; rejects with its error, or when it has not answered within `bound` ms */
  async ask<T> (request: Request, bound: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`${request.type}: no answer within ${bound} ms`)) }, bound)
      this.replies.push((message: any) => {
        clearTimeout(timer)
        if (message?.type === 'error') {
          reject(new Error(String(message.message)))
        } else {
          resolve(message as T)
        }
      })
      this.child.send(request)
    })
  }

  /** asks it to exit; killed if it has not within 5 s */
  async stop (): Promise<void> {
    if (this.child.exitCode != null) {
      return
    }
    const exited = new Promise(resolve => this.child.once('exit', resolve))
    this.child.send({ type: 'exit' })
    const timer = setTimeout(() => { this.child.kill() }, 5_000)
    await exited
    clearTimeout(timer)
  }
}

/**
 * In a child process: answers each request of the parent with what the handler of its `type`
 * resolves to, or `{ type: 'error', message }`. `exit` runs `onExit`, then ends the process.
 */
export function serve (handlers: Record<string, (request: any) => Promise<unknown>>, onExit: () => Promise<unknown> = async () => {}): void {
  process.on('message', (request: Request) => {
    if (request.type === 'exit') {
      void onExit().finally(() => process.exit(0))
      return
    }
    const reply = (message: unknown): void => { process.send?.(message) }
    const handler = handlers[request.type] ?? (async () => { throw new Error(`unknown request ${request.type}`) })
    handler(request).then(reply, (err: any) => { reply({ type: 'error', message: String(err?.stack ?? err) }) })
  })
}
