/**
 * The Node adapter: `os.networkInterfaces()` read every `pollInterval` on the supervisor's
 * clock (Node has no change event), turned into a snapshot, and a `network-path-changed`
 * event whenever the snapshot's content changes. Node only: never part of a browser bundle.
 */

import os from 'node:os'
import { checkDuration } from '@holdfast/interface'
import { POLL_INTERVAL_MS } from '../constants.ts'
import { contentFromInterfaces, sameContent } from '../policy.ts'
import type { AdapterContext, AdapterSink, NetworkAdapter } from '../index.ts'
import type { InterfaceAddress, SnapshotContent } from '../policy.ts'

export type { InterfaceAddress } from '../policy.ts'

export interface NodeAdapterInit {
  /**
   * How often (ms) the interface table is read.
   *
   * @default 2000
   */
  pollInterval?: number

  /**
   * Where the interface table comes from.
   *
   * @default os.networkInterfaces
   */
  networkInterfaces?(): Record<string, InterfaceAddress[] | undefined>
}

class NodeAdapter implements NetworkAdapter {
  readonly name = 'node'
  private readonly pollInterval: number
  private readonly source: () => Record<string, InterfaceAddress[] | undefined>
  private sink?: AdapterSink
  private context?: AdapterContext
  private timer?: unknown
  private last?: SnapshotContent
  private sequence = 0

  constructor (init: NodeAdapterInit) {
    this.pollInterval = checkDuration(init.pollInterval ?? POLL_INTERVAL_MS, 'pollInterval', 'config')
    this.source = init.networkInterfaces ?? (() => os.networkInterfaces())
  }

  start (sink: AdapterSink, context: AdapterContext): void {
    this.sink = sink
    this.context = context
    const first = this.read()
    if (first !== undefined) {
      this.last = first
      sink.baseline({ sequence: ++this.sequence, ...first })
    }
    this.schedule()
  }

  stop (): void {
    if (this.timer !== undefined) {
      this.context?.clock.clearTimeout(this.timer)
      this.timer = undefined
    }
    this.sink = undefined
  }

  internalSizes (): { timers: number, listeners: number } {
    return { timers: this.timer === undefined ? 0 : 1, listeners: 0 }
  }

  private schedule (): void {
    this.timer = this.context?.clock.setTimeout(this.poll, this.pollInterval)
  }

  private readonly poll = (): void => {
    this.timer = undefined
    if (this.sink == null) {
      return
    }
    const content = this.read()
    if (content !== undefined && (this.last === undefined || !sameContent(content, this.last))) {
      this.last = content
      this.sink.event({ type: 'network-path-changed', snapshot: { sequence: ++this.sequence, ...content } })
    }
    this.schedule()
  }

  /** undefined when the source throws: this reading is skipped, polling goes on */
  private read (): SnapshotContent | undefined {
    try {
      return contentFromInterfaces(this.source())
    } catch (err) {
      this.context?.log.error('reading the network interfaces failed - %e', err)
      return undefined
    }
  }
}

export function nodeAdapter (init: NodeAdapterInit = {}): NetworkAdapter {
  return new NodeAdapter(init)
}
