/**
 * The realm's own errors. Errors shared by every holdfast package (`RealmAuthError`,
 * `NotRealmMemberError`, `InvalidConfigError`...) come from `@holdfast/interface`. Each `name` is
 * the class name, which no libp2p error has: match on `err.name`.
 */

import { HoldfastError } from '@holdfast/interface'

/** A realm DHT key or record that is not valid: the DHT drops it, and it never wins a selection */
export class InvalidRealmRecordError extends HoldfastError {
  static name = 'InvalidRealmRecordError'
  constructor (message = 'Not a valid realm DHT record') { super(message) }
}

/** A member-only resource was asked for by a peer that is neither an authenticated member nor named infrastructure */
export class RealmAccessDeniedError extends HoldfastError {
  static name = 'RealmAccessDeniedError'
  constructor (message = 'Only realm members may use this') { super(message) }
}

/** A store of the realm is full (its record or provider budget is used up) */
export class RealmBudgetError extends HoldfastError {
  static name = 'RealmBudgetError'
  constructor (message = 'The realm store is full') { super(message) }
}

/** The connection was closed because its peer did not authenticate as a realm member in time */
export class RealmRejectedError extends HoldfastError {
  static name = 'RealmRejectedError'
  constructor (message = 'Not a realm member: the connection is closed') { super(message) }
}

/** `realm.connect` reached no address of the peer at all, so nothing is known about its membership */
export class PeerUnreachableError extends HoldfastError {
  static name = 'PeerUnreachableError'
  constructor (message = 'No address of the peer could be reached') { super(message) }
}
