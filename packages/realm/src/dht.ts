/**
 * Realm DHT records, `/holdfast-realm/<realmId>/<peerId>`. The value is signed by the peer's own
 * key over the realm ID, the seq and the sealed announcement, so any kad-dht node (a member or
 * not) validates it and picks the newest without being able to read the addresses inside.
 */

import { findServices } from '@holdfast/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { SEAL_DHT } from './announcements.ts'
import { DHT_REPUBLISH_INTERVAL, MAX_MESSAGE_SIZE } from './constants.ts'
import { InvalidRealmRecordError } from './errors.ts'
import { DhtRecord } from './pb/realm.ts'
import type { Announcements } from './announcements.ts'
import type { Clock } from '@holdfast/interface'
import type { AbortOptions, Logger, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** the kad-dht key namespace: configure `validators` and `selectors` under it */
export const DHT_NAMESPACE = 'holdfast-realm'

const SIGNING_DOMAIN = 'holdfast/realm/dht'

/** the kad protocol of the realm's own DHT (the one `@holdfast/node` builds, wrapped in `membersOnly`) */
export function realmDhtProtocol (realmId: string): string {
  return `/holdfast/realm/${realmId}/kad/1.0.0`
}

export function dhtKey (realmId: string, peer: PeerId): Uint8Array {
  return uint8ArrayFromString(`/${DHT_NAMESPACE}/${realmId}/${peer.toString()}`)
}

function signedBytes (realmId: string, seq: bigint, sealed: Uint8Array): Uint8Array {
  const prefix = uint8ArrayFromString(`${SIGNING_DOMAIN}${realmId}`)
  const out = new Uint8Array(prefix.length + 8 + sealed.length)
  out.set(prefix)
  new DataView(out.buffer).setBigUint64(prefix.length, seq)
  out.set(sealed, prefix.length + 8)
  return out
}

/** a realm DHT record: the sealed announcement and its seq, signed by the peer's own key (what `realmDhtValidator` checks) */
export async function createDhtRecord (realmId: string, seq: bigint, sealed: Uint8Array<ArrayBuffer>, privateKey: PrivateKey): Promise<Uint8Array> {
  const signature = new Uint8Array(await privateKey.sign(signedBytes(realmId, seq, sealed)))
  return DhtRecord.encode({ seq, sealed, signature })
}

/** `{ realmId, peer }` of a realm key; throws on anything else */
function parseKey (key: Uint8Array): { realmId: string, peer: PeerId } {
  const parts = uint8ArrayToString(key).split('/')
  if (parts.length !== 4 || parts[0] !== '' || parts[1] !== DHT_NAMESPACE || !/^[0-9a-f]{32}$/.test(parts[2])) {
    throw new InvalidRealmRecordError('Not a realm DHT key')
  }
  return { realmId: parts[2], peer: peerIdFromString(parts[3]) }
}

/** the decoded record when it is valid for `key`; throws (kad-dht's way to reject) otherwise */
export async function openDhtRecord (key: Uint8Array, value: Uint8Array): Promise<DhtRecord> {
  if (value.byteLength > MAX_MESSAGE_SIZE) {
    throw new InvalidRealmRecordError('Realm DHT record too big')
  }
  const { realmId, peer } = parseKey(key)
  const record = DhtRecord.decode(value)
  // Ed25519 and secp256k1 peer IDs carry their public key: no lookup, no address needed
  if (peer.publicKey == null) {
    throw new InvalidRealmRecordError('Realm DHT records need a peer ID that embeds its public key')
  }
  if (!(await peer.publicKey.verify(signedBytes(realmId, record.seq, record.sealed), record.signature))) {
    throw new InvalidRealmRecordError('Bad realm DHT record signature')
  }
  return record
}

/** kad-dht validator for the `holdfast-realm` namespace */
export async function realmDhtValidator (key: Uint8Array, value: Uint8Array): Promise<void> {
  await openDhtRecord(key, value)
}

/** kad-dht selector for the `holdfast-realm` namespace: the valid record with the highest seq */
export async function realmDhtSelector (key: Uint8Array, records: Uint8Array[]): Promise<number> {
  let best = 0
  let bestSeq = -1n
  for (const [i, value] of records.entries()) {
    try {
      const { seq } = await openDhtRecord(key, value)
      if (seq > bestSeq) {
        best = i
        bestSeq = seq
      }
    } catch {
      // an invalid record never wins
    }
  }
  return best
}

/** what the realm uses of kad-dht (found by its capability, used only when present) */
export interface RealmDht {
  put(key: Uint8Array, value: Uint8Array, opts?: AbortOptions): AsyncIterable<unknown>
  get(key: Uint8Array, opts?: AbortOptions): AsyncIterable<{ name: string, value?: Uint8Array }>
}

export interface RealmRecordsInit {
  dht: RealmDht
  realmId: string
  peerId: PeerId
  privateKey: PrivateKey
  clock: Clock
  log: Logger
}

/** the kad-dht that speaks the realm's own protocol, else the node's first one */
export function findRealmDht (components: object, realmId: string): RealmDht | undefined {
  const all = findServices<RealmDht & { protocol?: string }>(components, '@libp2p/kad-dht')
  return all.find(dht => dht.protocol === realmDhtProtocol(realmId)) ?? all[0]
}

/** This node's realm DHT record (re-put when due) and the lookup of a member's */
export class RealmRecords {
  private readonly init: RealmRecordsInit
  private readonly announcements: Announcements
  private put?: Promise<void>
  private publishedAt = -Infinity

  constructor (init: RealmRecordsInit, announcements: Announcements) {
    this.init = init
    this.announcements = announcements
  }

  /** puts under way (0 or 1) */
  get size (): number {
    return this.put == null ? 0 : 1
  }

  /** the addresses changed: the record is due at once */
  stale (): void {
    this.publishedAt = -Infinity
  }

  /** starts a put in the background when the record is due and none is under way */
  republishIfDue (signal: AbortSignal): void {
    if (this.put == null && this.init.clock.now() - this.publishedAt >= DHT_REPUBLISH_INTERVAL) {
      this.put = this.publish({ signal }).catch(err => { this.init.log('dht put: %e', err) }).finally(() => { this.put = undefined })
    }
  }

  /** waits for the put under way */
  async settled (): Promise<void> {
    await this.put
  }

  async publish (opts: AbortOptions): Promise<void> {
    const sealed = await this.announcements.build(false, SEAL_DHT)
    const value = await createDhtRecord(this.init.realmId, this.announcements.seq, sealed, this.init.privateKey)
    for await (const event of this.init.dht.put(dhtKey(this.init.realmId, this.init.peerId), value, opts)) {
      void event
    }
    this.publishedAt = this.init.clock.now()
  }

  /** the addresses of a member's realm DHT record, or undefined when there is none that opens */
  async lookup (peer: PeerId, opts: AbortOptions): Promise<Multiaddr[] | undefined> {
    const key = dhtKey(this.init.realmId, peer)
    const values: Uint8Array[] = []
    try {
      for await (const event of this.init.dht.get(key, opts)) {
        if (event.name === 'VALUE' && event.value != null) {
          values.push(event.value)
        }
      }
    } catch (err) {
      this.init.log('dht get %p: %e', peer, err)
    }
    if (values.length === 0) {
      return undefined
    }
    try {
      const record = await openDhtRecord(key, values[await realmDhtSelector(key, values)])
      const opened = await this.announcements.open(peer, record.sealed, SEAL_DHT)
      return typeof opened === 'string' || opened.announcement.seq !== record.seq ? undefined : opened.addrs
    } catch {
      return undefined
    }
  }
}
