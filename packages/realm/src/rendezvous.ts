/**
 * Realm rendezvous on any kad-dht, members or not: members provide, and look up the providers
 * of, a CID only holders of the PSK can compute, so a public DHT server introduces them without
 * learning their realm (not its ID, not its protocols; and the CID changes every epoch). It goes
 * through libp2p's `contentRouting`, so every content router of the node takes part (a private
 * realm kad-dht, the public `/ipfs/kad/1.0.0` one, go-libp2p DHT servers). What libp2p 3.3 and
 * kad-dht 16.4 do shapes it:
 * - kad-dht keeps a record of every CID the node provided and re-provides it every 24 h, forever: past epochs are cancelled each round, and all of them on stop;
 * - with no DHT peer kad-dht waits for one (or, with `allowQueryWithZeroPeers`, reaches nobody and resolves), and with no content router libp2p throws `NoContentRoutersError`: every call is bounded, and a failed round is logged and retried.
 */

import { checkDuration, InvalidArgumentError, TimeoutError, TrackedTimers } from '@holdfast/interface'
import { NotStartedError } from '@libp2p/interface'
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { anySignal } from 'any-signal'
import merge from 'it-merge'
import { setMaxListeners } from 'main-event'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { RENDEZVOUS_EPOCH, RENDEZVOUS_FIND_LIMIT, RENDEZVOUS_FIND_TIMEOUT, RENDEZVOUS_PROVIDE_TIMEOUT, RENDEZVOUS_REPROVIDE_INTERVAL, RENDEZVOUS_RETRY_DELAY } from './constants.ts'
import { epochsToFind, nextRetryDelay, provideRound } from './policy.ts'
import type { RealmKeys } from './keys.ts'
import type { Clock, InternalSizes, Introspectable } from '@holdfast/interface'
import type { AbortOptions, ContentRouting, Logger, PeerId, PeerInfo, Startable } from '@libp2p/interface'
import type { ClearableSignal } from 'any-signal'

const DOMAIN = uint8ArrayFromString('holdfast/realm/rendezvous')
const SHA2_256 = 0x12

/** `CIDv1(raw, sha2-256(HMAC-SHA256(rendezvousKey, "holdfast/realm/rendezvous" ‖ epoch as 8 bytes big-endian)))` */
export function rendezvousCid (keys: RealmKeys, epoch: number): CID {
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw new InvalidArgumentError('epoch must be a non-negative integer', 'epoch')
  }
  const input = new Uint8Array(DOMAIN.length + 8)
  input.set(DOMAIN)
  new DataView(input.buffer).setBigUint64(DOMAIN.length, BigInt(epoch))
  return CID.createV1(raw.code, createDigest(SHA2_256, sha256(hmac(sha256, keys.rendezvousKey, input))))
}

export interface RendezvousInit {
  keys: RealmKeys
  /** this node, which `find()` never yields (its own record is among the providers) */
  peerId: PeerId
  /** libp2p's `components.contentRouting`: every content router of the node (kad-dht registers itself as one) */
  contentRouting: Pick<ContentRouting, 'provide' | 'cancelReprovide' | 'findProviders'>
  /** epochs are read from `clock.now()`, which must be Unix time in ms (`systemClock` is): members on different machines must agree on them */
  clock: Clock
  log: Logger
  /**
   * ms between provide rounds, at most `RENDEZVOUS_EPOCH`
   *
   * @default RENDEZVOUS_REPROVIDE_INTERVAL
   */
  reprovideInterval?: number
}

export interface RendezvousFindOptions extends AbortOptions {
  /**
   * providers yielded at most
   *
   * @default RENDEZVOUS_FIND_LIMIT
   */
  limit?: number
}

interface Operation {
  signal: ClearableSignal
  readonly timedOut: boolean
  end(): void
}

export class Rendezvous implements Startable, Introspectable {
  private readonly keys: RealmKeys
  private readonly peerId: PeerId
  private readonly contentRouting: RendezvousInit['contentRouting']
  private readonly clock: Clock
  private readonly log: Logger
  private readonly reprovideInterval: number
  private readonly timers: TrackedTimers
  /** the epochs provided and not cancelled yet: kad-dht re-provides their CIDs until told not to */
  private readonly provided = new Set<number>()
  private shutdown = new AbortController()
  private running = false
  private round?: Promise<void>
  private roundTimer: unknown
  /** failed provide rounds in a row */
  private failures = 0
  private finds = 0
  private operations = 0

  constructor (init: RendezvousInit) {
    // at most one epoch: each epoch's CID must be provided at least once while it is current
    const interval = checkDuration(init.reprovideInterval ?? RENDEZVOUS_REPROVIDE_INTERVAL, 'reprovideInterval', 'config', { max: RENDEZVOUS_EPOCH })
    this.keys = init.keys
    this.peerId = init.peerId
    this.contentRouting = init.contentRouting
    this.clock = init.clock
    this.log = init.log
    this.reprovideInterval = interval
    this.timers = new TrackedTimers(init.clock)
  }

  /** provides at once, in the background, then every `reprovideInterval` */
  start (): void {
    if (this.running) {
      return
    }
    this.running = true
    this.failures = 0
    this.shutdown = new AbortController()
    // every operation's combined signal listens to it
    setMaxListeners(Infinity, this.shutdown.signal)
    void this.provide()
  }

  /** aborts what is in flight, then tells the content routers to stop re-providing every CID provided */
  async stop (): Promise<void> {
    if (!this.running) {
      return
    }
    this.running = false
    this.timers.clearAll()
    this.shutdown.abort()
    await this.round
    // or kad-dht would go on announcing this node under the realm's CIDs after it left
    await Promise.all([...this.provided].map(async epoch => this.cancel(epoch)))
  }

  /**
   * Provides now (joining the round in flight): call it when the node's addresses change or its
   * DHT meets its first peers. Never rejects: a failed round is logged and retried after
   * `RENDEZVOUS_RETRY_DELAY`, doubling up to the reprovide interval. Does nothing when stopped.
   */
  async provide (): Promise<void> {
    if (!this.running) {
      return
    }
    this.round ??= this.runRound().finally(() => { this.round = undefined })
    return this.round
  }

  /**
   * The providers of the current and the previous epoch's CID but this node, each once, as they
   * are found. Ends after `limit` of them, or quietly after `RENDEZVOUS_FIND_TIMEOUT`; rejects
   * with the reason when the caller's signal aborts or the rendezvous stops.
   */
  async * find (opts: RendezvousFindOptions = {}): AsyncGenerator<PeerInfo> {
    if (!this.running) {
      throw new NotStartedError('The rendezvous is not started')
    }
    const limit = opts.limit ?? RENDEZVOUS_FIND_LIMIT
    if (!Number.isInteger(limit) || limit < 1) {
      throw new InvalidArgumentError('limit must be a positive integer', 'limit')
    }
    const op = this.operation(RENDEZVOUS_FIND_TIMEOUT, 'find', opts.signal)
    const seen = new Set<string>()
    this.finds++
    try {
      const lookups = epochsToFind(this.clock.now(), RENDEZVOUS_EPOCH)
        .map(epoch => this.contentRouting.findProviders(rendezvousCid(this.keys, epoch), { signal: op.signal }))
      for await (const provider of merge(...lookups)) {
        const id = provider.id.toString()
        if (provider.id.equals(this.peerId) || seen.has(id)) {
          continue
        }
        seen.add(id)
        yield { id: provider.id, multiaddrs: provider.multiaddrs }
        if (seen.size >= limit) {
          return
        }
      }
    } catch (err) {
      if (!op.timedOut) {
        throw err
      }
      this.log('rendezvous find timed out after %d providers', seen.size)
    } finally {
      op.end()
      this.finds--
    }
  }

  internalSizes (): InternalSizes {
    return {
      peers: 0, // each find() keeps the peers it yielded on its own stack
      timers: this.timers.size,
      listeners: this.operations, // each operation's signal listens to the shutdown signal and the caller's
      provides: this.round == null ? 0 : 1,
      finds: this.finds,
      cids: this.provided.size
    }
  }

  private async runRound (): Promise<void> {
    this.timers.clear(this.roundTimer)
    const plan = provideRound(this.clock.now(), this.provided, RENDEZVOUS_EPOCH, this.reprovideInterval)
    const op = this.operation(RENDEZVOUS_PROVIDE_TIMEOUT, 'provide')
    try {
      await Promise.all([
        ...plan.provide.map(async epoch => {
          // kept before the call: kad-dht stores its own record before it walks, so even a failed provide is cancelled later
          this.provided.add(epoch)
          await this.contentRouting.provide(rendezvousCid(this.keys, epoch), { signal: op.signal })
        }),
        ...plan.cancel.map(async epoch => this.cancel(epoch))
      ])
      this.failures = 0
      this.log('provided the rendezvous CIDs of epochs %s', plan.provide.join(', '))
    } catch (err) {
      this.failures++
      this.log('rendezvous provide failed (%d in a row), will retry: %e', this.failures, err)
    } finally {
      op.end()
    }
    if (this.running) {
      this.roundTimer = this.timers.set(() => { void this.provide() }, nextRetryDelay(this.failures, this.reprovideInterval, RENDEZVOUS_RETRY_DELAY))
    }
  }

  /** stops the content routers re-providing `epoch`'s CID; a failure is only logged (the remote records expire anyway) */
  private async cancel (epoch: number): Promise<void> {
    this.provided.delete(epoch)
    try {
      await this.contentRouting.cancelReprovide(rendezvousCid(this.keys, epoch))
    } catch (err) {
      this.log('could not cancel the rendezvous CID of epoch %d: %e', epoch, err)
    }
  }

  /** a signal that aborts on stop, on the caller's signal or after `timeout` ms on the clock */
  private operation (timeout: number, what: string, signal?: AbortSignal): Operation {
    const ender = new AbortController()
    const combined = anySignal([this.shutdown.signal, ender.signal, signal])
    // kad-dht adds a listener to it for each peer it sends a message to
    setMaxListeners(Infinity, combined)
    let timedOut = false
    const timer = this.timers.set(() => {
      timedOut = true
      ender.abort(new TimeoutError(`rendezvous ${what} timed out after ${timeout} ms`))
    }, timeout)
    this.operations++
    return {
      signal: combined,
      get timedOut () { return timedOut },
      end: () => {
        this.timers.clear(timer)
        // whatever a content router still runs for this operation stops here
        ender.abort()
        combined.clear()
        this.operations--
      }
    }
  }
}
