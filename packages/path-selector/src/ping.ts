/**
 * Pinging paths: the heartbeat of every peer's path in use, the keep-alive of the others,
 * and the probe `connect` resolves after. The pings are libp2p's ping protocol, sent on one
 * given connection: the ping service can only ping a peer, and libp2p would pick the
 * connection.
 */

import { byteStream } from '@libp2p/utils'
import { equals } from 'uint8arrays/equals'
import { PING_LENGTH } from './constants.ts'
import { boundedSignal } from './records.ts'
import type { PathSelectorConfig } from './config.ts'
import type { PathRecord, PeerRecord } from './records.ts'
import type { TrackedTimers } from '@holdfast/interface'
import type { AbortOptions, Connection, Logger } from '@libp2p/interface'

export interface HeartbeatContext {
  config: Pick<PathSelectorConfig, 'clock' | 'preset'>
  timers: TrackedTimers
  log: Logger
  /** the peers whose paths are pinged */
  peers: ReadonlyMap<string, PeerRecord>
  /** aborted when the service stops */
  stopSignal(): AbortSignal
  /** feeds a ping's outcome into the path's average and failure count */
  onSample(entry: PeerRecord, path: PathRecord, success: boolean, rttMs: number | undefined): void
}

export class Heartbeat {
  /** the ping protocol, set while the service runs on a node with a ping service */
  protocol: string | undefined
  /** pings under way */
  inFlight = 0

  private readonly context: HeartbeatContext
  private timer: unknown

  constructor (context: HeartbeatContext) {
    this.context = context
  }

  /** One timer for all peers, running only while there are paths to watch */
  ensure (running: boolean): void {
    const wanted = running && this.protocol != null && this.context.peers.size > 0
    if (wanted && this.timer == null) {
      this.timer = this.context.timers.set(this.beat, this.context.config.preset.heartbeatIntervalMs)
    } else if (!wanted && this.timer != null) {
      this.context.timers.clear(this.timer)
      this.timer = undefined
    }
  }

  /** Forgets the timer: the service clears all its timers on stop */
  stop (): void {
    this.timer = undefined
  }

  /** Pings the path in use of every peer, and any other path silent for a keep-alive period */
  private readonly beat = (): void => {
    this.timer = undefined
    const now = this.context.config.clock.now()
    for (const entry of this.context.peers.values()) {
      for (const path of entry.paths) {
        if (path === entry.current || now - path.lastActive >= this.context.config.preset.keepAlivePeriodMs) {
          this.pingPath(entry, path)
        }
      }
    }
    this.ensure(true)
  }

  private pingPath (entry: PeerRecord, path: PathRecord): void {
    const protocol = this.protocol
    if (path.pinging || protocol == null) {
      return
    }
    path.pinging = true
    this.inFlight++
    this.ping(path.connection, protocol).then(
      rttMs => { this.context.onSample(entry, path, true, rttMs) },
      err => {
        if (this.context.stopSignal().aborted) {
          return
        }
        // a peer without the ping protocol still answered the negotiation over this path
        const answered = (err as Error).name === 'UnsupportedProtocolError'
        if (!answered) {
          this.context.log('heartbeat on %s path %s to %p failed - %e', path.kind, path.id, entry.peer, err)
        }
        this.context.onSample(entry, path, answered, undefined)
      }
    ).finally(() => {
      path.pinging = false
      this.inFlight--
    })
  }

  /** `connect` resolves only once a stream can be opened: a ping proves it, and gives the path its first RTT */
  async probe (connection: Connection, opts: AbortOptions, onRtt: (rttMs: number) => void): Promise<void> {
    if (this.protocol == null) {
      return
    }
    this.inFlight++
    try {
      onRtt(await this.ping(connection, this.protocol, opts))
    } finally {
      this.inFlight--
    }
  }

  /** One ping on `connection`, timed out after one heartbeat interval; resolves with the RTT */
  private async ping (connection: Connection, protocol: string, opts: AbortOptions = {}): Promise<number> {
    const { timers } = this.context
    const { clock, preset } = this.context.config
    const bounded = boundedSignal(timers, preset.heartbeatIntervalMs, [this.context.stopSignal(), opts.signal])
    const { signal } = bounded
    try {
      const stream = await connection.newStream(protocol, { signal, runOnLimitedConnection: true })
      try {
        const bytes = byteStream(stream)
        const data = crypto.getRandomValues(new Uint8Array(PING_LENGTH))
        const start = clock.now()
        await bytes.write(data, { signal })
        const echo = await bytes.read({ bytes: PING_LENGTH, signal })
        const rttMs = clock.now() - start
        if (!equals(echo.subarray(), data)) {
          throw new Error('wrong ping echo')
        }
        await stream.close({ signal }).catch(() => {})
        return rttMs
      } catch (err) {
        stream.abort(err as Error)
        throw err
      }
    } finally {
      bounded.clear()
    }
  }
}
