/**
 * `realm(init)` checked and filled from the defaults once: every option that is wrong is an
 * `InvalidConfigError` naming it, before the service exists.
 */

import { InvalidConfigError, systemClock } from '@holdfast/interface'
import { isPeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { ANNOUNCE_INTERVAL, AUTH_TIMEOUT, CLOCK_SKEW, MAX_MESSAGE_SIZE, MEMBER_TTL_INTERVALS } from './constants.ts'
import type { RealmInit } from './index.ts'
import type { Clock } from '@holdfast/interface'

export interface RealmConfig {
  announceInterval: number
  memberTtl: number
  authTimeout: number
  clockSkew: number
  maxMessageSize: number
  natType: string
  exclusive: boolean
  relayMembersOnly: boolean
  dht: boolean
  rendezvous: boolean
  serveAddressBook: boolean
  /** peer IDs, as strings */
  infrastructure: Set<string>
  clock: Clock
}

export function configOf (init: RealmInit): RealmConfig {
  const announceInterval = duration(init.announceInterval ?? ANNOUNCE_INTERVAL, 'announceInterval')
  return {
    announceInterval,
    memberTtl: duration(init.memberTtl ?? announceInterval * MEMBER_TTL_INTERVALS, 'memberTtl'),
    authTimeout: duration(init.authTimeout ?? AUTH_TIMEOUT, 'authTimeout'),
    clockSkew: duration(init.clockSkew ?? CLOCK_SKEW, 'clockSkew', true),
    maxMessageSize: messageSize(init.maxMessageSize ?? MAX_MESSAGE_SIZE),
    natType: natType(init.natType ?? 'unknown'),
    exclusive: flag(init.exclusive ?? true, 'exclusive'),
    relayMembersOnly: flag(init.relayMembersOnly ?? true, 'relayMembersOnly'),
    dht: flag(init.dht ?? true, 'dht'),
    rendezvous: flag(init.rendezvous ?? true, 'rendezvous'),
    serveAddressBook: flag(init.serveAddressBook ?? true, 'serveAddressBook'),
    infrastructure: infrastructureIds(init.infrastructure ?? []),
    clock: init.clock ?? systemClock
  }
}

function natType (value: unknown): string {
  if (typeof value !== 'string' || value.length > 32) {
    throw new InvalidConfigError('natType must be a string of at most 32 characters', 'natType')
  }
  return value
}

/** ms; also refuses 2^31 and above, which timers would clamp to 1 ms */
function duration (value: unknown, option: string, zeroOk = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (value === 0 && !zeroOk) || value >= 2 ** 31) {
    throw new InvalidConfigError(`${option} must be a ${zeroOk ? 'non-negative' : 'positive'} number of ms below 2^31`, option)
  }
  return value
}

/** bytes: an announcement with a few addresses needs about 1 KiB, so less than that would never form a realm */
function messageSize (value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1024 || value > 1024 * 1024) {
    throw new InvalidConfigError('maxMessageSize must be a whole number of bytes from 1024 to 1 MiB', 'maxMessageSize')
  }
  return value
}

function flag (value: unknown, option: string): boolean {
  if (typeof value !== 'boolean') {
    throw new InvalidConfigError(`${option} must be true or false`, option)
  }
  return value
}

function infrastructureIds (peers: unknown): Set<string> {
  if (!Array.isArray(peers)) {
    throw new InvalidConfigError('infrastructure must be an array of peer IDs or multiaddrs with /p2p/<id>', 'infrastructure')
  }
  return new Set(peers.map(peer => {
    if (isPeerId(peer)) {
      return peer.toString()
    }
    let id: string | undefined
    try {
      id = multiaddr(peer as string).getComponents().findLast(c => c.name === 'p2p')?.value
    } catch {
      id = undefined
    }
    if (id == null) {
      throw new InvalidConfigError(`infrastructure: ${String(peer)} is neither a peer ID nor a multiaddr with /p2p/<id>`, 'infrastructure')
    }
    return id
  }))
}
