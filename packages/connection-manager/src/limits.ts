/**
 * The per-direction limits, as a layer of the node's one gater chain: an inbound connection over
 * `maxInbound` is refused after the security handshake and before the muxer is negotiated, so no
 * stream can ever be opened on it; a dial over `maxOutbound` rejects with `ConnectionLimitError`
 * before anything is dialed. Protected peers pass both.
 */

import { addGaterLayer, ConnectionLimitError, gaterLayers, removeGaterLayer } from '@holdfast/interface'
import { indexOfConnection } from './peer-table.ts'
import { overLimit } from './policy.ts'
import type { ConnEntry, PeerEntry, PeerTable } from './peer-table.ts'
import type { Settings } from './policy.ts'
import type { Tags } from './tags.ts'
import type { Announcer } from './trimmer.ts'
import type { CloseReason, ConnectionDirection, GaterHost } from '@holdfast/interface'
import type { Connection, CounterGroup, Logger, PeerId } from '@libp2p/interface'

/** the manager's layer in the node's gater chain */
const GATE_OWNER = '@holdfast/connection-manager'

export interface LimitsInit {
  /** libp2p's components, which hold the node's gater */
  host: GaterHost
  table: PeerTable
  tags: Tags
  log: Logger
  settings(): Settings
  announcer: Announcer
  /** closes one connection with a reason, and announces it */
  close(entry: PeerEntry, conn: ConnEntry, reason: CloseReason): void
  refusedMetric?: CounterGroup
}

export class DirectionLimits {
  private readonly init: LimitsInit
  /** connections refused, by direction */
  readonly refused: Record<ConnectionDirection, number> = { inbound: 0, outbound: 0 }

  constructor (init: LimitsInit) {
    this.init = init
  }

  /** the manager's layer is in the node's gater chain */
  get installed (): boolean {
    return gaterLayers(this.init.host).includes(GATE_OWNER)
  }

  /** Adds the limits to the node's gater chain; the node's own gater is not modified, and a restart adds nothing */
  install (): void {
    addGaterLayer(this.init.host, GATE_OWNER, {
      denyInboundEncryptedConnection: (peer) => this.refuse('inbound', peer),
      denyDialPeer: (peer) => {
        if (this.refuse('outbound', peer)) {
          throw new ConnectionLimitError(`maxOutbound (${this.init.settings().maxOutbound}) reached`)
        }
        return false
      }
    })
  }

  remove (): void {
    removeGaterLayer(this.init.host, GATE_OWNER)
  }

  /**
   * The backstop for concurrent upgrades, which can pass the gater together: a new connection
   * that lands over its direction's limit is closed at once (reason `limit`). False when it was.
   */
  admit (entry: PeerEntry, connection: Connection): boolean {
    const { direction } = connection
    const { table, settings } = this.init
    const count = direction === 'inbound' ? table.inbound : table.outbound
    const max = direction === 'inbound' ? settings().maxInbound : settings().maxOutbound
    if (!overLimit(count - 1, max, entry.protected) || !this.refuse(direction, connection.remotePeer)) {
      return true
    }
    const conn = entry.conns[indexOfConnection(entry.conns, connection)]
    if (conn != null) {
      this.init.close(entry, conn, 'limit')
    }
    return false
  }

  /** True (and counted, and announced) when a new connection in that direction goes over its limit */
  private refuse (direction: ConnectionDirection, peer: PeerId): boolean {
    const { table, tags, settings } = this.init
    const current = direction === 'inbound' ? table.inbound : table.outbound
    const max = direction === 'inbound' ? settings().maxInbound : settings().maxOutbound
    if (!overLimit(current, max, tags.hasProtection(peer.toString()))) {
      return false
    }
    this.refused[direction]++
    this.init.refusedMetric?.increment({ [direction]: true })
    this.init.log('%s connection with %p refused: max%s %d reached', direction, peer, direction === 'inbound' ? 'Inbound' : 'Outbound', max)
    this.init.announcer.emit('limit:exceeded', { direction, peer })
    return true
  }
}
