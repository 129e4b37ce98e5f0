import type { ForceReconnectOptions, NetworkEventProcessor } from '../src/index.ts'
import type { NetworkCleanupReason, NetworkEvent, NetworkSnapshot, ReconnectReason } from '@holdfast/interface'
import type { AbortOptions } from '@libp2p/interface'

type Transport = NetworkSnapshot['transport']

const NO_TRANSPORT: Transport = { wifi: false, cellular: false, ethernet: false, vpn: false, other: false }

/** A snapshot: `snap(3, 'available', { wifi: true })` */
export function snap (sequence: number, availability: NetworkSnapshot['availability'], transport: Partial<Transport> = {}, flags: { isExpensive?: boolean, isConstrained?: boolean } = {}): NetworkSnapshot {
  return { sequence, availability, transport: { ...NO_TRANSPORT, ...transport }, isExpensive: flags.isExpensive ?? false, isConstrained: flags.isConstrained ?? false }
}

export const path = (snapshot: NetworkSnapshot): NetworkEvent => ({ type: 'network-path-changed', snapshot })
export const foreground = (backgroundDurationMs: number): NetworkEvent => ({ type: 'app-lifecycle-changed', state: { state: 'foreground', backgroundDurationMs } })
export const background = (): NetworkEvent => ({ type: 'app-lifecycle-changed', state: { state: 'background' } })
export const cleanup = (reason: NetworkCleanupReason = 'user-logout'): NetworkEvent => ({ type: 'cleanup-connections', reason })
export const force = (reason: ReconnectReason = 'manual-reconnect'): NetworkEvent => ({ type: 'force-reconnect', reason })

export interface Call {
  method: keyof NetworkEventProcessor
  reason?: string
  cleanupReason?: string
}

/**
 * A processor that records its calls (not a mock of the node: the reconciler is what is
 * under test). `hold()` makes the next calls wait until `release()`.
 */
export class RecordingProcessor implements NetworkEventProcessor {
  readonly calls: Call[] = []
  running = 0
  maxConcurrent = 0
  failWith?: Error
  private gate?: PromiseWithResolvers<void>
  private started?: PromiseWithResolvers<void>

  hold (): void {
    this.gate = Promise.withResolvers()
  }

  release (): void {
    this.gate?.resolve()
    this.gate = undefined
  }

  /** resolves when the next call starts */
  async nextCall (): Promise<void> {
    this.started ??= Promise.withResolvers()
    return this.started.promise
  }

  async offline (options?: AbortOptions): Promise<void> { await this.record({ method: 'offline' }) }
  async probe (options?: AbortOptions): Promise<void> { await this.record({ method: 'probe' }) }
  async restore (options?: AbortOptions): Promise<void> { await this.record({ method: 'restore' }) }
  async cleanupOnly (reason: NetworkCleanupReason, options?: AbortOptions): Promise<void> { await this.record({ method: 'cleanupOnly', reason }) }
  async forceReconnect (reason: ReconnectReason, options?: ForceReconnectOptions): Promise<void> {
    await this.record({ method: 'forceReconnect', reason, ...(options?.cleanupReason === undefined ? {} : { cleanupReason: options.cleanupReason }) })
  }

  private async record (call: Call): Promise<void> {
    this.calls.push(call)
    this.running++
    this.maxConcurrent = Math.max(this.maxConcurrent, this.running)
    this.started?.resolve()
    this.started = undefined
    try {
      await this.gate?.promise
      if (this.failWith != null) {
        throw this.failWith
      }
    } finally {
      this.running--
    }
  }
}
