/**
 * The demo's echo protocol: a served echo, and one round trip on a stream that the path selector
 * (or a given connection) opens, tried again when the connection under it is replaced.
 */

import { byteStream } from '@libp2p/utils'
import { nextEvent } from './demo-waits.ts'
import type { HoldfastRealmNode } from '../node.ts'
import type { HoldfastEvents } from '@holdfast/interface'
import type { Path } from '@holdfast/path-selector'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'

export const ECHO = '/holdfast-demo/echo/1.0.0'

/** one echo round trip on a new stream: whether the same bytes came back, and in how long */
async function echo (open: () => Promise<Stream>, signal: AbortSignal): Promise<{ ok: boolean, rttMs: number }> {
  const started = performance.now()
  const stream = byteStream(await open())
  const sent = new TextEncoder().encode('hello, same bytes back please')
  await stream.write(sent, { signal })
  const back = await stream.read({ bytes: sent.length, signal })
  await stream.unwrap().close({ signal })
  return { ok: equalBytes(back.subarray(), sent), rttMs: performance.now() - started }
}

/** an echo's tries: the first, and one more for each connection closed under it */
const ECHO_TRIES = 3

/**
 * An echo from `node` to `peer` on a stream the path selector opens, tried again while the peer
 * stays watched: a dial still in flight (theirs or ours) can land beside the connection in use,
 * and the cleanup broadcaster of either end then closes one of the two with its streams
 * (`connection:replaced`). For that moment the peer may even be held again; the next try waits
 * until the reconnector has it back. Retries are reported.
 */
export async function echoPeer (node: HoldfastRealmNode, peer: PeerId, signal: AbortSignal): Promise<{ ok: boolean, rttMs: number, retriedAfter?: string }> {
  const open = async (): Promise<Stream> => node.services.paths.openStream(peer, ECHO, { signal })
  let firstError: string | undefined
  for (let tries = 1; ; tries++) {
    try {
      return { ...await echo(open, signal), ...(firstError == null ? {} : { retriedAfter: firstError }) }
    } catch (err: any) {
      signal.throwIfAborted()
      if (tries === ECHO_TRIES) {
        throw err
      }
      firstError ??= String(err?.message ?? err)
      await connectedAgain(node, peer, signal)
    }
  }
}

/** resolves once the node's reconnector has the peer connected (at once if it has) */
export async function connectedAgain (node: HoldfastRealmNode, peer: PeerId, signal: AbortSignal): Promise<void> {
  const reconnector = node.services.reconnector
  if (reconnector.state(peer) !== 'connected') {
    await nextEvent<HoldfastEvents['peer:recovered']>(reconnector, 'peer:recovered', d => d.peer.equals(peer), signal)
  }
}

/** how an echo's detail mentions a retry */
export const retried = (round: { retriedAfter?: string }): string => round.retriedAfter == null ? '' : `, on a later try after "${round.retriedAfter}"`

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i])
}

export async function serveEcho (node: Libp2p): Promise<void> {
  await node.handle(ECHO, async (stream) => {
    for await (const chunk of stream) {
      stream.send(chunk)
    }
    await stream.close()
  }, { runOnLimitedConnection: true })
}

/**
 * An echo on the connection of the best path, tried again (on the best path then) when that
 * connection closes under it: a second WebRTC connection, dialled from the other side at the same
 * moment, can replace it (`connection:replaced`).
 */
export async function echoOverBest (node: HoldfastRealmNode, peer: PeerId, signal: AbortSignal): Promise<{ best?: Path, direct: Connection, round: { ok: boolean, rttMs: number, retriedAfter?: string } }> {
  let firstError: string | undefined
  for (let tries = 1; ; tries++) {
    const best = node.services.paths.best(peer)
    const direct = node.getConnections(peer).find(c => c.id === best?.connectionId)
    if (direct == null) {
      throw new Error('the best path has no open connection')
    }
    try {
      const round = await echo(async () => direct.newStream(ECHO, { signal }), signal)
      return { best, direct, round: { ...round, ...(firstError == null ? {} : { retriedAfter: firstError }) } }
    } catch (err: any) {
      signal.throwIfAborted()
      if (tries === ECHO_TRIES || direct.status === 'open') {
        throw err
      }
      firstError ??= String(err?.message ?? err)
    }
  }
}
