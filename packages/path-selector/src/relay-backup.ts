/**
 * The relayed connection kept beside a direct one: tagged `relay-backup` in the peer store, so
 * libp2p's pruner keeps the peer, and protected in the holdfast connection manager when the
 * node has one. Without `keepRelayBackup` the relayed connections are closed instead.
 */

import { TAGS } from '@holdfast/interface'
import { RELAY_BACKUP_TAG_VALUE } from './constants.ts'
import type { PeerRecord } from './records.ts'
import type { WatermarkConnectionManager } from '@holdfast/interface'
import type { Logger, PeerStore } from '@libp2p/interface'

export interface RelayBackupContext {
  peerStore: PeerStore
  log: Logger
  keepRelayBackup: boolean
  /** the node's holdfast connection manager, if any */
  connectionManager(): WatermarkConnectionManager | undefined
}

export class RelayBackup {
  private readonly context: RelayBackupContext

  constructor (context: RelayBackupContext) {
    this.context = context
  }

  /** Sets or clears the backup after the peer's paths or mode changed */
  update (entry: PeerRecord): void {
    const relayed = entry.paths.filter(p => p.kind === 'relayed')
    const hasDirect = entry.paths.some(p => p.kind === 'direct')
    if (hasDirect && relayed.length > 0 && !this.context.keepRelayBackup && entry.current?.kind === 'direct') {
      for (const p of relayed) {
        p.connection.close().catch(err => { p.connection.abort(err) })
      }
      return
    }
    this.set(entry, relayed.length > 0 && (hasDirect || entry.mode === 'fallback'))
  }

  set (entry: PeerRecord, on: boolean): void {
    if (entry.backup === on) {
      return
    }
    entry.backup = on
    const connectionManager = this.context.connectionManager()
    if (on) {
      connectionManager?.protect(entry.peer, TAGS.relayBackup)
    } else {
      connectionManager?.unprotect(entry.peer, TAGS.relayBackup)
    }
    this.context.peerStore.merge(entry.peer, { tags: { [TAGS.relayBackup]: on ? { value: RELAY_BACKUP_TAG_VALUE } : undefined } })
      .catch(err => { this.context.log('could not %s the relay-backup tag of %p - %e', on ? 'set' : 'remove', entry.peer, err) })
  }
}
