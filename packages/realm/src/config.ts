/**
 * `realm(init)` checked and filled from the defaults once: every option that is wrong is an
 * `InvalidConfigError` naming it, before the service exists.
 */

import { checkDuration, checkNumber, InvalidConfigError } from '@holdfast/interface'
import { isPeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { defaults, MEMBER_TTL_INTERVALS } from './constants.ts'
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

/** bytes: an announcement with a few addresses needs about 1 KiB, so less than that would never form a realm */
const MIN_MESSAGE_SIZE = 1024
const MAX_MESSAGE_SIZE_LIMIT = 1024 * 1024

export function configOf (init: RealmInit): RealmConfig {
  const announceInterval = checkDuration(init.announceInterval ?? defaults.announceInterval, 'announceInterval', 'config')
  return {
    announceInterval,
    memberTtl: checkDuration(init.memberTtl ?? announceInterval * MEMBER_TTL_INTERVALS, 'memberTtl', 'config'),
    authTimeout: checkDuration(init.authTimeout ?? defaults.authTimeout, 'authTimeout', 'config'),
    clockSkew: checkDuration(init.clockSkew ?? defaults.clockSkew, 'clockSkew', 'config', { allowZero: true }),
    maxMessageSize: messageSize(init.maxMessageSize ?? defaults.maxMessageSize),
    natType: natType(init.natType ?? defaults.natType),
    exclusive: flag(init.exclusive ?? defaults.exclusive, 'exclusive'),
    relayMembersOnly: flag(init.relayMembersOnly ?? defaults.relayMembersOnly, 'relayMembersOnly'),
    dht: flag(init.dht ?? defaults.dht, 'dht'),
    rendezvous: flag(init.rendezvous ?? defaults.rendezvous, 'rendezvous'),
    serveAddressBook: flag(init.serveAddressBook ?? defaults.serveAddressBook, 'serveAddressBook'),
    infrastructure: infrastructureIds(init.infrastructure ?? defaults.infrastructure),
    clock: clockOf(init.clock ?? defaults.clock)
  }
}

function natType (value: unknown): string {
  if (typeof value !== 'string' || value.length > 32) {
    throw new InvalidConfigError('natType must be a string of at most 32 characters', 'natType')
  }
  return value
}

function messageSize (value: unknown): number {
  const size = checkNumber(value, 'maxMessageSize', 'config', MIN_MESSAGE_SIZE, MAX_MESSAGE_SIZE_LIMIT)
  if (!Number.isInteger(size)) {
    throw new InvalidConfigError(`maxMessageSize must be a whole number of bytes, got ${size}`, 'maxMessageSize')
  }
  return size
}

function flag (value: unknown, option: string): boolean {
  if (typeof value !== 'boolean') {
    throw new InvalidConfigError(`${option} must be true or false`, option)
  }
  return value
}

function clockOf (clock: unknown): Clock {
  const c = clock as Partial<Clock> | null
  if (typeof c?.now !== 'function' || typeof c.setTimeout !== 'function' || typeof c.clearTimeout !== 'function') {
    throw new InvalidConfigError('clock must have now, setTimeout and clearTimeout', 'clock')
  }
  return clock as Clock
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
