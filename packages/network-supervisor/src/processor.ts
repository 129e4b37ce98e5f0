import { AbortError, CAPABILITIES, TAGS, findService, relayPeerOf } from '@holdfast/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { CIRCUIT_RELAY_TAG } from './constants.ts'
import { RecoveryStepError } from './errors.ts'
import type { StepFailure } from './errors.ts'
import type { ForceReconnectOptions, NetworkEventProcessor, NetworkSupervisorComponents } from './index.ts'
import type { CleanupBroadcaster, CleanupReason, Clock, NetworkCleanupReason, PathSelector, Realm, Reconnector, ReconnectReason } from '@holdfast/interface'
import type { AbortOptions, Connection, Logger, PeerId } from '@libp2p/interface'

/** libp2p's ping service (`@libp2p/ping`), typed by the one method used */
export interface PingLike {
  ping(peer: PeerId, options?: AbortOptions & { runOnLimitedConnection?: boolean }): Promise<number>
}

const PING_CAPABILITY = '@libp2p/ping'

export interface DefaultProcessorOptions {
  probeTimeout: number
  clock: Clock
  log: Logger
}

/** Runs the steps of one action; a failing step is recorded and the next still runs */
class Steps {
  private readonly failures: StepFailure[] = []

  constructor (private readonly log: Logger, private readonly signal?: AbortSignal) {}

  async run (step: string, fn: () => unknown): Promise<void> {
    if (this.signal?.aborted === true) {
      throw new AbortError()
    }
    try {
      await fn()
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      this.log.error('step %s failed - %e', step, error)
      this.failures.push({ step, error })
    }
  }

  finish (action: string): void {
    if (this.failures.length > 0) {
      throw new RecoveryStepError(action, this.failures)
    }
  }
}

/**
 * The default processor: acts on the node. Uses the broadcaster, the reconnector, the path
 * selector, the realm and the ping service when the node has them (found by capability when an
 * action runs), and skips what they would do when it does not.
 */
export class DefaultProcessor implements NetworkEventProcessor {
  private readonly components: NetworkSupervisorComponents
  private readonly options: DefaultProcessorOptions
  private readonly log: Logger

  constructor (components: NetworkSupervisorComponents, options: DefaultProcessorOptions) {
    this.components = components
    this.options = options
    this.log = options.log.newScope('processor')
  }

  /** pause the reconnector; abort dials in flight; keep the connections; mark paths suspect */
  async offline (options: AbortOptions = {}): Promise<void> {
    const steps = new Steps(this.log, options.signal)
    await steps.run('pause-reconnector', () => { this.reconnector()?.pause() })
    await steps.run('abort-dials', async () => this.abortDials())
    await steps.run('mark-paths-suspect', () => {
      const selector = this.pathSelector()
      for (const connection of selector == null ? [] : this.components.connectionManager.getConnections()) {
        selector?.report(connection.remotePeer, connection.id, { success: false })
      }
    })
    steps.finish('offline')
  }

  /** ping the relays and realm members in use; any failure escalates to restore */
  async probe (options: AbortOptions = {}): Promise<void> {
    const ping = this.ping()
    if (ping == null) {
      this.log('no ping service: probe escalates to restore')
      await this.restore(options)
      return
    }
    const targets = await this.probeTargets()
    const outcomes = await Promise.all(targets.map(async peer => this.pingOnce(ping, peer, options.signal)))
    if (options.signal?.aborted === true) {
      throw new AbortError()
    }
    const failed = outcomes.filter(o => o.error != null).length
    if (failed > 0) {
      this.log('probe: %d of %d peers did not answer, restoring', failed, targets.length)
      await this.restore(options)
    }
  }

  /** validate paths, re-dial relays, resume the reconnector, re-announce in the realm */
  async restore (options: AbortOptions = {}): Promise<void> {
    const steps = new Steps(this.log, options.signal)
    await this.restoreSteps(steps, options, false)
    steps.finish('restore')
  }

  /** pause the reconnector (until a restore), then close every connection */
  async cleanupOnly (reason: NetworkCleanupReason, options: AbortOptions = {}): Promise<void> {
    const steps = new Steps(this.log, options.signal)
    await this.cleanupSteps(steps, reason)
    steps.finish('cleanup-only')
  }

  /** cleanup-only, then restore */
  async forceReconnect (reason: ReconnectReason, options: ForceReconnectOptions = {}): Promise<void> {
    const steps = new Steps(this.log, options.signal)
    await this.cleanupSteps(steps, options.cleanupReason ?? reason)
    await this.restoreSteps(steps, options, true)
    steps.finish('force-reconnect')
  }

  private async cleanupSteps (steps: Steps, reason: CleanupReason): Promise<void> {
    await steps.run('pause-reconnector', () => { this.reconnector()?.pause() })
    await steps.run('close-all', async () => {
      const broadcaster = this.broadcaster()
      if (broadcaster != null) {
        await broadcaster.closeAll(reason)
        return
      }
      // without a broadcaster nothing tracks pending work: closing the connections is all we can do
      await Promise.all(this.components.connectionManager.getConnections().map(closeConnection))
    })
  }

  private async restoreSteps (steps: Steps, options: AbortOptions, reconnectHeld: boolean): Promise<void> {
    await steps.run('validate-paths', async () => this.validatePaths(options.signal))
    await steps.run('redial-relays', async () => this.redialRelays(options.signal))
    await steps.run('resume-reconnector', async () => {
      const reconnector = this.reconnector()
      reconnector?.resume({ resetBackoff: true })
      // after a force-reconnect every peer is held on purpose: retry them now rather than
      // after the reconnector's tolerance window
      if (reconnectHeld) {
        await reconnector?.reconnectNow()
      }
    })
    await steps.run('realm-announce', async () => this.realm()?.announce())
  }

  /**
   * Aborts the broadcaster's dials in flight to peers with no connection: a full cleanup of
   * such a peer rejects its dials and closes nothing. Connected peers keep everything.
   */
  private async abortDials (): Promise<void> {
    const broadcaster = this.broadcaster()
    if (broadcaster == null) {
      return
    }
    const { connectionManager } = this.components
    const dialing = new Map<string, PeerId>()
    for (const dial of connectionManager.getDialQueue()) {
      if (dial.peerId != null && connectionManager.getConnections(dial.peerId).length === 0) {
        dialing.set(dial.peerId.toString(), dial.peerId)
      }
    }
    await Promise.all([...dialing.values()].map(async peer => broadcaster.cleanup(peer, 'network-offline')))
  }

  /** pings every connected peer; a peer that does not answer has its connections closed */
  private async validatePaths (signal?: AbortSignal): Promise<void> {
    const ping = this.ping()
    if (ping == null) {
      return
    }
    const byPeer = new Map<string, Connection[]>()
    for (const connection of this.components.connectionManager.getConnections()) {
      const key = connection.remotePeer.toString()
      byPeer.set(key, [...(byPeer.get(key) ?? []), connection])
    }
    const selector = this.pathSelector()
    await Promise.all([...byPeer.values()].map(async connections => {
      const peer = connections[0].remotePeer
      const { rttMs, error, busy } = await this.pingOnce(ping, peer, signal)
      if (busy === true) {
        this.log('%p: a ping is already in flight, leaving its validation to it', peer)
        return
      }
      for (const connection of connections) {
        selector?.report(peer, connection.id, error == null ? { rttMs, success: true } : { success: false })
      }
      if (error != null && signal?.aborted !== true) {
        this.log('%p did not answer a ping, closing its connections - %e', peer, error)
        await Promise.all(connections.map(closeConnection))
      }
    }))
  }

  /** re-dials every relay so its reservation can come back */
  private async redialRelays (signal?: AbortSignal): Promise<void> {
    const relays = await this.relays()
    const failures: string[] = []
    await Promise.all(relays.map(async relay => {
      try {
        await this.dial(relay, signal)
      } catch (err) {
        failures.push(`${relay}: ${(err as Error).message}`)
      }
    }))
    if (failures.length > 0) {
      throw new Error(`could not re-dial ${failures.length} of ${relays.length} relays (${failures.join(', ')})`)
    }
  }

  /** relays of the node's circuit listen addresses, and peers tagged as relays in use */
  private async relays (): Promise<PeerId[]> {
    const { addressManager, peerStore } = this.components
    const relays = new Map<string, PeerId>()
    for (const addr of [...addressManager.getListenAddrs(), ...addressManager.getAddresses()]) {
      const relay = relayPeerOf(addr)
      if (relay !== undefined && !relays.has(relay)) {
        relays.set(relay, peerIdFromString(relay))
      }
    }
    const tagged = await peerStore.all({ filters: [p => p.tags.has(TAGS.relayActive) || p.tags.has(CIRCUIT_RELAY_TAG)] })
    for (const peer of tagged) {
      relays.set(peer.id.toString(), peer.id)
    }
    return [...relays.values()]
  }

  /**
   * Connected relays and realm members: the peers whose loss the app would feel. With
   * neither, every connected peer: a probe that pings nothing would prove nothing.
   */
  private async probeTargets (): Promise<PeerId[]> {
    const { connectionManager } = this.components
    const targets = new Map<string, PeerId>()
    const candidates = [...(this.realm()?.members().map(m => m.peerId) ?? []), ...await this.relays()]
    for (const connection of connectionManager.getConnections()) {
      // a relayed connection's relay is in use too
      const relay = connection.direct === false ? relayPeerOf(connection.remoteAddr) : undefined
      if (relay !== undefined) {
        candidates.push(peerIdFromString(relay))
      }
    }
    for (const peer of candidates) {
      if (connectionManager.getConnections(peer).length > 0) {
        targets.set(peer.toString(), peer)
      }
    }
    if (targets.size === 0) {
      for (const connection of connectionManager.getConnections()) {
        targets.set(connection.remotePeer.toString(), connection.remotePeer)
      }
    }
    return [...targets.values()]
  }

  /**
   * One ping: answered (`rttMs`), failed (`error`), or `busy`: our own per-connection stream
   * limit refused it because another ping (libp2p's connection monitor, the path selector's
   * heartbeat) is in flight on the path and will judge it; the peer failed nothing.
   */
  private async pingOnce (ping: PingLike, peer: PeerId, signal?: AbortSignal): Promise<{ rttMs?: number, error?: Error, busy?: true }> {
    const controller = new AbortController()
    const timer = this.options.clock.setTimeout(() => { controller.abort(new Error(`no answer within ${this.options.probeTimeout} ms`)) }, this.options.probeTimeout)
    const signals = signal == null ? [controller.signal] : [controller.signal, signal]
    try {
      const rttMs = await ping.ping(peer, { signal: AbortSignal.any(signals), runOnLimitedConnection: true })
      return { rttMs }
    } catch (err) {
      if ((err as Error)?.name === 'TooManyOutboundProtocolStreamsError') {
        return { busy: true }
      }
      return { error: err instanceof Error ? err : new Error(String(err)) }
    } finally {
      this.options.clock.clearTimeout(timer)
    }
  }

  /**
   * Every dial the processor makes for a peer: through the broadcaster when the node has one,
   * so a cleanup of the peer aborts it
   */
  private async dial (peer: PeerId, signal?: AbortSignal): Promise<void> {
    const broadcaster = this.broadcaster()
    await (broadcaster == null
      ? this.components.connectionManager.openConnection(peer, { signal })
      : broadcaster.dial(peer, { signal }))
  }

  private broadcaster (): CleanupBroadcaster | undefined {
    return findService<CleanupBroadcaster>(this.components, CAPABILITIES.cleanupBroadcaster)
  }

  private reconnector (): Reconnector | undefined {
    return findService<Reconnector>(this.components, CAPABILITIES.reconnector)
  }

  private pathSelector (): PathSelector | undefined {
    return findService<PathSelector>(this.components, CAPABILITIES.pathSelector)
  }

  private realm (): Realm | undefined {
    return findService<Realm>(this.components, CAPABILITIES.realm)
  }

  private ping (): PingLike | undefined {
    return findService<PingLike>(this.components, PING_CAPABILITY)
  }
}

async function closeConnection (connection: Connection): Promise<void> {
  await connection.close().catch(err => { connection.abort(err) })
}
