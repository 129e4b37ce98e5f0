/**
 * Errors shared by every holdfast service. Each has a stable `name`: match on `err.name`,
 * never `instanceof`, because an app can end up with two copies of this package.
 */

import type { PeerId } from '@libp2p/interface'

/**
 * libp2p's own `AbortError` (name `AbortError`) is what holdfast rejects with when the caller's
 * signal aborts: one name for "you cancelled this" across libp2p and holdfast. The spec's
 * `AbortedError` is this class.
 */
export { AbortError } from '@libp2p/interface'

/** The peer (or the one connection the work was bound to) went away while the work was pending */
export class ConnectionClosedError extends Error {
  static name = 'ConnectionClosedError'
  readonly peer?: PeerId
  readonly reason?: string

  constructor (message = 'The connection closed', peer?: PeerId, reason?: string) {
    super(message)
    this.name = 'ConnectionClosedError'
    this.peer = peer
    this.reason = reason
  }
}

/** The peer is being cleaned up (or was, within the closing window): new work for it fails at once */
export class PeerClosingError extends Error {
  static name = 'PeerClosingError'
  readonly peer?: PeerId

  constructor (message = 'The peer is closing', peer?: PeerId) {
    super(message)
    this.name = 'PeerClosingError'
    this.peer = peer
  }
}

/** A bare peer ID was given where holdfast has no way to find an address for it */
export class AddressRequiredError extends Error {
  static name = 'AddressRequiredError'

  constructor (message = 'An address is required to reach this peer') {
    super(message)
    this.name = 'AddressRequiredError'
  }
}

/** The target peer is not an authenticated member of the realm */
export class NotRealmMemberError extends Error {
  static name = 'NotRealmMemberError'

  constructor (message = 'The peer is not a member of the realm') {
    super(message)
    this.name = 'NotRealmMemberError'
  }
}

/** Realm authentication failed (wrong PSK, bad MAC, replayed proof) */
export class RealmAuthError extends Error {
  static name = 'RealmAuthError'

  constructor (message = 'Realm authentication failed') {
    super(message)
    this.name = 'RealmAuthError'
  }
}

/** Every known path to the peer has failed */
export class NoAvailablePathError extends Error {
  static name = 'NoAvailablePathError'

  constructor (message = 'No path to the peer is available') {
    super(message)
    this.name = 'NoAvailablePathError'
  }
}

/** A per-direction connection limit refused a connection */
export class ConnectionLimitError extends Error {
  static name = 'ConnectionLimitError'

  constructor (message = 'Connection limit reached') {
    super(message)
    this.name = 'ConnectionLimitError'
  }
}

/** A service was constructed with a configuration it cannot honour */
export class InvalidConfigError extends Error {
  static name = 'InvalidConfigError'
  /** the init option that is wrong */
  readonly option?: string

  constructor (message = 'Invalid configuration', option?: string) {
    super(message)
    this.name = 'InvalidConfigError'
    this.option = option
  }
}

/** An argument of a call is malformed (wrong type, negative duration, NaN, ...) */
export class InvalidArgumentError extends Error {
  static name = 'InvalidArgumentError'
  /** the argument that is wrong */
  readonly argument?: string

  constructor (message = 'Invalid argument', argument?: string) {
    super(message)
    this.name = 'InvalidArgumentError'
    this.argument = argument
  }
}

/** An event type that is not part of `HoldfastEvents` */
export class UnknownEventTypeError extends Error {
  static name = 'UnknownEventTypeError'
  readonly type: string

  constructor (type: string) {
    super(`Unknown event type "${type}"`)
    this.name = 'UnknownEventTypeError'
    this.type = type
  }
}

/** An operation did not complete within its timeout */
export class TimeoutError extends Error {
  static name = 'TimeoutError'

  constructor (message = 'Timed out') {
    super(message)
    this.name = 'TimeoutError'
  }
}
