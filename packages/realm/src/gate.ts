/**
 * The realm's gates: who may stay connected, who may dial or be dialled, who may hold a
 * reservation or open a circuit through this node when it is a relay.
 *
 * A peer that fails auth (or never finishes it) on an exclusive realm is denied for a capped
 * exponential backoff, in a bounded table: a redial loop by an outsider costs it, not us.
 */

import { MAX_REJECTED_PEERS } from './constants.ts'
import { rejectBackoff, setBounded } from './policy.ts'
import type { Clock, GaterLayer } from '@holdfast/interface'
import type { PeerId } from '@libp2p/interface'

/** What a gate asks of the realm */
export interface GateChecks {
  /** an infrastructure peer the app named (a relay, a bootstrap peer): never denied, never authenticated */
  isInfrastructure(peer: PeerId): boolean
  /** holds an authenticated connection, after waiting (up to `authTimeout`) for the auth under way on its connections */
  isAuthenticatedMember(peer: PeerId): Promise<boolean>
  /** the peer is turned away at a gate: count it */
  refused(peer: PeerId, where: 'denied' | 'reservation' | 'circuit'): void
}

interface Denial {
  failures: number
  until: number
}

/** Peers denied after failing auth, each until its backoff ends; the oldest entry goes first when full */
export class DenyTable {
  private readonly denials = new Map<string, Denial>()
  private readonly clock: Clock
  private readonly initial: number
  private readonly max: number

  constructor (clock: Clock, initial: number, max: number) {
    this.clock = clock
    this.initial = initial
    this.max = max
  }

  get size (): number {
    return this.denials.size
  }

  /** denies the peer for its next backoff; returns how long */
  deny (peer: PeerId): number {
    const key = peer.toString()
    const failures = (this.denials.get(key)?.failures ?? 0) + 1
    const ms = rejectBackoff(failures, this.initial, this.max)
    setBounded(this.denials, key, { failures, until: this.clock.now() + ms }, MAX_REJECTED_PEERS)
    return ms
  }

  isDenied (peer: PeerId): boolean {
    const denial = this.denials.get(peer.toString())
    return denial != null && denial.until > this.clock.now()
  }

  /** a peer that proved membership: its record goes */
  forget (peer: PeerId): void {
    this.denials.delete(peer.toString())
  }

  /**
   * Drops the denials whose backoff ended more than one cap ago: a peer that fails again after
   * that starts from the initial backoff.
   */
  sweep (): void {
    const now = this.clock.now()
    for (const [key, denial] of this.denials) {
      if (denial.until + this.max <= now) {
        this.denials.delete(key)
      }
    }
  }

  clear (): void {
    this.denials.clear()
  }
}

export interface RealmGateInit {
  /** close and deny non-members (the exclusive realm) */
  exclusive: boolean
  /** reservations and circuits through this node, when it is a relay, only for members */
  relayMembersOnly: boolean
}

/**
 * The realm's layer of the node's gater chain: each hook denies what the realm refuses (the
 * node's own gater and the other layers are asked as well).
 */
export function realmGateLayer (init: RealmGateInit, denials: DenyTable, checks: GateChecks): GaterLayer {
  const deniedPeer = (peer: PeerId): boolean => {
    if (!init.exclusive || checks.isInfrastructure(peer) || !denials.isDenied(peer)) {
      return false
    }
    checks.refused(peer, 'denied')
    return true
  }
  return {
    denyDialPeer: (peer) => deniedPeer(peer),
    denyInboundEncryptedConnection: (peer) => deniedPeer(peer),
    denyOutboundEncryptedConnection: (peer) => deniedPeer(peer),
    denyInboundRelayedConnection: (_relay, remote) => deniedPeer(remote),
    denyInboundRelayReservation: async (source) => {
      if (!init.relayMembersOnly || await checks.isAuthenticatedMember(source)) {
        return false
      }
      checks.refused(source, 'reservation')
      return true
    },
    denyOutboundRelayedConnection: async (source, destination) => {
      if (!init.relayMembersOnly) {
        return false
      }
      const [from, to] = await Promise.all([checks.isAuthenticatedMember(source), checks.isAuthenticatedMember(destination)])
      if (from && to) {
        return false
      }
      checks.refused(from ? destination : source, 'circuit')
      return true
    }
  }
}
