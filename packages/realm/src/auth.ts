/**
 * The realm auth protocol, `/holdfast/realm/<realmId>/auth/1.0.0`, run once on every connection:
 *
 * dialer `{ nonce }` → listener `{ nonce, proof, seq }` → dialer `{ proof, seq }` → listener `{ accepted }`
 *
 * Each proof is an HMAC under the realm's auth key over both peer IDs, both fresh nonces and the
 * prover's announcement seq (see `authProof`). A connection gets one inbound auth stream, and an
 * exchange that has not finished `authTimeout` after the connection opened fails, whatever
 * arrives: an outsider can hold neither streams nor memory here.
 */

import { RealmAuthError } from '@holdfast/interface'
import { pbStream } from '@libp2p/utils'
import { NONCE_LENGTH } from './constants.ts'
import { authProof, randomNonce, verifyProof } from './keys.ts'
import { AuthMessage } from './pb/realm.ts'
import type { RealmKeys } from './keys.ts'
import type { AuthFailure, Clock } from '@holdfast/interface'
import type { AbortOptions, Connection, Logger, PeerId, Stream } from '@libp2p/interface'

export interface AuthInit {
  keys: RealmKeys
  self: PeerId
  clock: Clock
  authTimeout: number
  maxMessageSize: number
  log: Logger
}

/** What the auth protocol asks of the realm, and tells it */
export interface AuthHooks {
  /** this node's current announcement seq, proved to the remote */
  ownSeq(): bigint
  /** the realm runs and has not left: otherwise nothing is proved to anyone */
  accepting(): boolean
  /** the connection already passed auth */
  isAuthenticated(connection: Connection): boolean
  onAuthenticated(connection: Connection, remoteSeq: bigint): void
  onFailed(connection: Connection, reason: AuthFailure, err: AuthFailed): void
}

interface PendingAuth {
  /** the remote peer, as a string */
  peer: string
  promise: Promise<void>
  controller: AbortController
  timer: unknown
  resolve(remoteSeq: bigint): void
  reject(reason: AuthFailure, err: Error): void
}

/** A `RealmAuthError` that says why the exchange failed */
export class AuthFailed extends RealmAuthError {
  // a RealmAuthError to callers: the reason is the detail
  static name = 'RealmAuthError'

  constructor (readonly reason: AuthFailure, message: string) {
    super(message)
  }
}

export class RealmAuth {
  readonly protocol: string
  private readonly init: AuthInit
  private readonly hooks: AuthHooks
  private readonly pending = new Map<string, PendingAuth>()
  /** connections whose one inbound auth stream has been taken: any further one is refused */
  private readonly answered = new WeakSet<Connection>()
  /** connections whose exchange failed: the verdict is final, asked again it comes at once */
  private readonly failed = new WeakMap<Connection, AuthFailed>()

  constructor (init: AuthInit, hooks: AuthHooks) {
    this.init = init
    this.hooks = hooks
    this.protocol = `/holdfast/realm/${init.keys.realmId}/auth/1.0.0`
  }

  /** exchanges under way (each holds one timer) */
  get size (): number {
    return this.pending.size
  }

  /**
   * Runs (or joins) the exchange on a connection. The dialer opens the stream; the listener's
   * side starts the clock at once and waits for the dialer's stream until `authTimeout`.
   */
  async authenticate (connection: Connection, opts: AbortOptions = {}): Promise<void> {
    const existing = this.pending.get(connection.id)
    if (existing != null) {
      return existing.promise
    }
    if (this.hooks.isAuthenticated(connection)) {
      return
    }
    const failed = this.failed.get(connection)
    if (failed != null) {
      throw failed
    }
    if (!this.hooks.accepting()) {
      throw new RealmAuthError('The realm service is not running or has left the realm')
    }
    const pending = this.track(connection)
    if (connection.direction === 'outbound') {
      this.dial(connection, pending, opts).then(seq => { pending.resolve(seq) }, err => { pending.reject(reasonOf(err), err) })
    }
    return pending.promise
  }

  /** the registrar handler: the listener's side */
  readonly handle = (stream: Stream, connection: Connection): void => {
    void this.answer(stream, connection)
  }

  /** the connection closed: its exchange, if any, fails now */
  connectionClosed (connectionId: string): void {
    this.pending.get(connectionId)?.reject('closed', new RealmAuthError('The connection closed during realm authentication'))
  }

  /** the ids of the peer's connections under auth */
  pendingOf (peer: PeerId): string[] {
    const key = peer.toString()
    return [...this.pending].filter(([, entry]) => entry.peer === key).map(([id]) => id)
  }

  /** fails every exchange under way */
  stop (): void {
    for (const pending of [...this.pending.values()]) {
      pending.reject('not-running', new RealmAuthError('The realm service stopped'))
    }
  }

  /** one entry per connection under auth, settled once; settling clears its timer and aborts its stream */
  private track (connection: Connection): PendingAuth {
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    // nobody may be awaiting it (auth started from connection:open)
    promise.catch(() => {})
    const controller = new AbortController()
    const settle = (fn: () => void): void => {
      if (this.pending.get(connection.id) === entry) {
        this.pending.delete(connection.id)
        this.init.clock.clearTimeout(entry.timer)
        fn()
      }
    }
    const entry: PendingAuth = {
      peer: connection.remotePeer.toString(),
      promise,
      controller,
      timer: undefined,
      resolve: (seq) => { settle(() => { this.hooks.onAuthenticated(connection, seq); resolve() }) },
      reject: (reason, cause) => {
        settle(() => {
          const err = cause instanceof AuthFailed ? cause : new AuthFailed(reason, cause.name === 'RealmAuthError' ? cause.message : `Realm authentication failed: ${cause.name}`)
          controller.abort(err)
          this.failed.set(connection, err)
          this.hooks.onFailed(connection, reason, err)
          reject(err)
        })
      }
    }
    entry.timer = this.init.clock.setTimeout(() => {
      entry.reject('timeout', new RealmAuthError('Realm authentication timed out'))
    }, this.init.authTimeout)
    this.pending.set(connection.id, entry)
    return entry
  }

  private ids (connection: Connection): { self: Uint8Array, remote: Uint8Array } {
    return { self: new Uint8Array(this.init.self.toMultihash().bytes), remote: new Uint8Array(connection.remotePeer.toMultihash().bytes) }
  }

  /** the dialer's side: resolves with the remote's proved seq */
  private async dial (connection: Connection, pending: PendingAuth, opts: AbortOptions): Promise<bigint> {
    const signal = opts.signal == null ? pending.controller.signal : AbortSignal.any([pending.controller.signal, opts.signal])
    let stream: Stream | undefined
    try {
      // optimistic: the protocol name goes out with the nonce, one round trip less; a peer without it fails on the first read
      stream = await connection.newStream(this.protocol, { runOnLimitedConnection: true, negotiateFully: false, signal })
      const pb = pbStream(stream, { maxDataLength: this.init.maxMessageSize }).pb(AuthMessage)
      const { self, remote } = this.ids(connection)
      const ownNonce = randomNonce(NONCE_LENGTH)
      await pb.write({ nonce: ownNonce }, { signal })
      const reply = await pb.read({ signal })
      if (reply.nonce?.length !== NONCE_LENGTH || reply.seq == null) {
        throw new AuthFailed('malformed', 'Malformed realm auth reply')
      }
      if (!verifyProof(this.init.keys, reply.proof, remote, self, reply.nonce, ownNonce, reply.seq)) {
        throw new AuthFailed('bad-proof', 'The peer failed to prove realm membership')
      }
      const seq = this.hooks.ownSeq()
      await pb.write({ proof: authProof(this.init.keys, self, remote, ownNonce, reply.nonce, seq), seq }, { signal })
      const verdict = await pb.read({ signal })
      if (verdict.accepted !== true) {
        throw new AuthFailed('refused', 'The peer refused our realm proof')
      }
      await stream.close({ signal }).catch(() => {})
      return reply.seq
    } catch (err: any) {
      stream?.abort(err)
      throw err
    }
  }

  /** the listener's side: one stream per connection, bounded by the connection's auth deadline */
  private async answer (stream: Stream, connection: Connection): Promise<void> {
    if (!this.hooks.accepting()) {
      stream.abort(new RealmAuthError('Not accepting realm auth'))
      return
    }
    if (this.answered.has(connection) || this.hooks.isAuthenticated(connection)) {
      stream.abort(new RealmAuthError('One realm auth stream per connection'))
      this.hooks.onFailed(connection, 'duplicate-stream', new AuthFailed('duplicate-stream', 'A second realm auth stream on one connection'))
      return
    }
    this.answered.add(connection)
    const pending = this.pending.get(connection.id) ?? this.track(connection)
    const signal = pending.controller.signal
    try {
      const pb = pbStream(stream, { maxDataLength: this.init.maxMessageSize }).pb(AuthMessage)
      const hello = await pb.read({ signal })
      if (hello.nonce?.length !== NONCE_LENGTH) {
        throw new AuthFailed('malformed', 'Malformed realm auth hello')
      }
      const { self, remote } = this.ids(connection)
      const ownNonce = randomNonce(NONCE_LENGTH)
      const seq = this.hooks.ownSeq()
      await pb.write({ nonce: ownNonce, proof: authProof(this.init.keys, self, remote, ownNonce, hello.nonce, seq), seq }, { signal })
      const answer = await pb.read({ signal })
      const accepted = answer.seq != null && verifyProof(this.init.keys, answer.proof, remote, self, hello.nonce, ownNonce, answer.seq)
      await pb.write({ accepted }, { signal })
      if (!accepted || answer.seq == null) {
        throw new AuthFailed('bad-proof', 'The peer failed to prove realm membership')
      }
      // authenticated once the verdict is out: the dialer may hang up before our close completes
      pending.resolve(answer.seq)
      await stream.close({ signal }).catch(() => {})
    } catch (err: any) {
      pending.reject(reasonOf(err), err)
      stream.abort(err)
    }
  }
}

/**
 * what the length-prefixed protobuf reader throws for bytes that are not an auth message (an
 * early end of stream is not among them: a connection cut mid-exchange says nothing about the peer)
 */
const MALFORMED = new Set(['InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError', 'MaxLengthError', 'MaxSizeError', 'ParseError', 'CodeError', 'RangeError'])

function reasonOf (err: any): AuthFailure {
  if (err instanceof AuthFailed) {
    return err.reason
  }
  if (err?.name === 'UnsupportedProtocolError') {
    return 'unsupported'
  }
  if (MALFORMED.has(err?.name)) {
    return 'malformed'
  }
  return 'stream-error'
}
