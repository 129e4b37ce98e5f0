/**
 * Errors shared by every holdfast service. Each has a stable `name`: match on `err.name`,
 * never `instanceof`, because an app can end up with two copies of this package.
 *
 * Where libp2p already has an error with the same meaning, holdfast uses libp2p's: its
 * `AbortError` ("you cancelled this") and `TimeoutError` are re-exported, and
 * `ConnectionClosedError` extends libp2p's class of that name, so `instanceof` against either
 * holds. Every other name is holdfast's own and differs from any libp2p error name.
 */

import { ConnectionClosedError as Libp2pConnectionClosedError } from '@libp2p/interface'
import type { PeerId } from '@libp2p/interface'

export { AbortError, TimeoutError } from '@libp2p/interface'

/**
 * The base of holdfast's own errors: `name` is the class name, set once here, so each error
 * below only says what it means and what it carries.
 */
export class HoldfastError extends Error {
  constructor (message: string) {
    super(message)
    this.name = new.target.name
  }
}

/** The peer (or the one connection the work was bound to) went away while the work was pending */
export class ConnectionClosedError extends Libp2pConnectionClosedError {
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
export class PeerClosingError extends HoldfastError {
  static name = 'PeerClosingError'
  constructor (message = 'The peer is closing', readonly peer?: PeerId) { super(message) }
}

/** A bare peer ID was given where holdfast has no way to find an address for it */
export class AddressRequiredError extends HoldfastError {
  static name = 'AddressRequiredError'
  constructor (message = 'An address is required to reach this peer') { super(message) }
}

/** The target peer is not an authenticated member of the realm */
export class NotRealmMemberError extends HoldfastError {
  static name = 'NotRealmMemberError'
  constructor (message = 'The peer is not a member of the realm') { super(message) }
}

/** Realm authentication failed (wrong PSK, bad MAC, replayed proof) */
export class RealmAuthError extends HoldfastError {
  static name = 'RealmAuthError'
  constructor (message = 'Realm authentication failed') { super(message) }
}

/** Every known path to the peer has failed */
export class NoAvailablePathError extends HoldfastError {
  static name = 'NoAvailablePathError'
  constructor (message = 'No path to the peer is available') { super(message) }
}

/** A per-direction connection limit refused a connection */
export class ConnectionLimitError extends HoldfastError {
  static name = 'ConnectionLimitError'
  constructor (message = 'Connection limit reached') { super(message) }
}

/** A service was constructed with a configuration it cannot honour; `option` names the init option */
export class InvalidConfigError extends HoldfastError {
  static name = 'InvalidConfigError'
  constructor (message = 'Invalid configuration', readonly option?: string) { super(message) }
}

/** An argument of a call is malformed (wrong type, negative duration, NaN, ...); `argument` names it */
export class InvalidArgumentError extends HoldfastError {
  static name = 'InvalidArgumentError'
  constructor (message = 'Invalid argument', readonly argument?: string) { super(message) }
}

/** An event type that is not part of `HoldfastEvents` */
export class UnknownEventTypeError extends HoldfastError {
  static name = 'UnknownEventTypeError'
  constructor (readonly type: string) { super(`Unknown event type "${type}"`) }
}
