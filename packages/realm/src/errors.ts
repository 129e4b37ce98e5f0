/**
 * The realm's own errors. Errors shared by every holdfast package (`RealmAuthError`,
 * `NotRealmMemberError`, `InvalidConfigError`...) come from `@holdfast/interface`.
 */

/** A realm DHT key or record that is not valid: the DHT drops it, and it never wins a selection */
export class InvalidRealmRecordError extends Error {
  static name = 'InvalidRealmRecordError'

  constructor (message = 'Not a valid realm DHT record') {
    super(message)
    this.name = 'InvalidRealmRecordError'
  }
}

/** A member-only resource was asked for by a peer that is neither an authenticated member nor named infrastructure */
export class RealmAccessDeniedError extends Error {
  static name = 'RealmAccessDeniedError'

  constructor (message = 'Only realm members may use this') {
    super(message)
    this.name = 'RealmAccessDeniedError'
  }
}

/** A store of the realm is full (its record or provider budget is used up) */
export class RealmBudgetError extends Error {
  static name = 'RealmBudgetError'

  constructor (message = 'The realm store is full') {
    super(message)
    this.name = 'RealmBudgetError'
  }
}

/** The connection was closed because its peer did not authenticate as a realm member in time */
export class RealmRejectedError extends Error {
  static name = 'RealmRejectedError'

  constructor (message = 'Not a realm member: the connection is closed') {
    super(message)
    this.name = 'RealmRejectedError'
  }
}

/** `realm.connect` reached no address of the peer at all, so nothing is known about its membership */
export class PeerUnreachableError extends Error {
  static name = 'PeerUnreachableError'

  constructor (message = 'No address of the peer could be reached') {
    super(message)
    this.name = 'PeerUnreachableError'
  }
}
