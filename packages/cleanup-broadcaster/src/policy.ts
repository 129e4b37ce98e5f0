/**
 * Pure decisions of the broadcaster: no libp2p objects, no timers.
 */

import type { CleanupReason, ConnectionDirection, HoldfastEvents, HoldfastEventType, PathKind } from '@holdfast/interface'

export interface ConnectionFacts {
  direction: ConnectionDirection
  path: PathKind
}

/**
 * Which of two open connections of one peer to close when the newer one arrives. Both ends
 * must agree, or each closes a different one and the peer is lost:
 * - different path kinds are not replacements (a relayed backup beside a direct path is wanted);
 * - dialed by different ends (simultaneous dial): keep the one dialed by the peer whose ID
 * sorts first, which both ends compute the same way;
 * - both dialed by us: the newer wins; both dialed by them: they decide, we do nothing.
 */
export function replacementVictim (newer: ConnectionFacts, older: ConnectionFacts, localPeer: string, remotePeer: string): 'older' | 'newer' | 'none' {
  if (newer.path !== older.path) {
    return 'none'
  }
  if (newer.direction !== older.direction) {
    const keep: ConnectionDirection = localPeer < remotePeer ? 'outbound' : 'inbound'
    return newer.direction === keep ? 'older' : 'newer'
  }
  return newer.direction === 'outbound' ? 'older' : 'none'
}

/** True when every required condition has been marked (`implied` counts as marked) */
export function isReady (required: readonly string[], marked: readonly string[] | undefined, implied?: string): boolean {
  for (const condition of required) {
    if (condition !== implied && marked?.includes(condition) !== true) {
      return false
    }
  }
  return true
}

/**
 * Events published by other services that trigger a full cleanup of a peer: the reconnector
 * giving up on it, or a failed restart of its path. Returns the reason, or undefined when the
 * event is not a trigger.
 */
export function cleanupTrigger<K extends HoldfastEventType> (type: K, detail: HoldfastEvents[K]): CleanupReason | undefined {
  if (type === 'peer:removed') {
    return 'reconnect-gave-up'
  }
  if (type === 'restart:completed' && (detail as HoldfastEvents['restart:completed']).success === false) {
    return 'restart-failed'
  }
  return undefined
}
