import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface AuthMessage {
  nonce?: Uint8Array<ArrayBuffer>
  proof?: Uint8Array<ArrayBuffer>
  accepted?: boolean
  seq?: bigint
}

export namespace AuthMessage {
  let _codec: Codec<AuthMessage>

  export const codec = (): Codec<AuthMessage> => {
    if (_codec == null) {
      _codec = message<AuthMessage>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.nonce != null) {
          w.uint32(10)
          w.bytes(obj.nonce)
        }

        if (obj.proof != null) {
          w.uint32(18)
          w.bytes(obj.proof)
        }

        if (obj.accepted != null) {
          w.uint32(24)
          w.bool(obj.accepted)
        }

        if (obj.seq != null) {
          w.uint32(32)
          w.uint64(obj.seq)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {}

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.nonce = reader.bytes()
              break
            }
            case 2: {
              obj.proof = reader.bytes()
              break
            }
            case 3: {
              obj.accepted = reader.bool()
              break
            }
            case 4: {
              obj.seq = reader.uint64()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.nonce`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.proof`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.accepted`,
                value: reader.bool()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface AuthMessageNonceFieldEvent {
    field: '$.nonce'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AuthMessageProofFieldEvent {
    field: '$.proof'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AuthMessageAcceptedFieldEvent {
    field: '$.accepted'
    value: boolean
  }

  export interface AuthMessageSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export function encode (obj: Partial<AuthMessage>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, AuthMessage.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AuthMessage>): AuthMessage {
    return decodeMessage(buf, AuthMessage.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AuthMessage>): Generator<AuthMessageNonceFieldEvent | AuthMessageProofFieldEvent | AuthMessageAcceptedFieldEvent | AuthMessageSeqFieldEvent> {
    return streamMessage(buf, AuthMessage.codec(), opts)
  }
}

export interface Announcement {
  peerId: Uint8Array<ArrayBuffer>
  seq: bigint
  signedPeerRecord: Uint8Array<ArrayBuffer>
  relays: Uint8Array<ArrayBuffer>[]
  natType: string
  leaving: boolean
  issuedAt: bigint
}

export namespace Announcement {
  let _codec: Codec<Announcement>

  export const codec = (): Codec<Announcement> => {
    if (_codec == null) {
      _codec = message<Announcement>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.peerId != null && obj.peerId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.peerId)
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(16)
          w.uint64(obj.seq)
        }

        if ((obj.signedPeerRecord != null && obj.signedPeerRecord.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.signedPeerRecord)
        }

        if (obj.relays != null && obj.relays.length > 0) {
          for (const value of obj.relays) {
            w.uint32(34)
            w.bytes(value)
          }
        }

        if ((obj.natType != null && obj.natType !== '')) {
          w.uint32(42)
          w.string(obj.natType)
        }

        if ((obj.leaving != null && obj.leaving !== false)) {
          w.uint32(48)
          w.bool(obj.leaving)
        }

        if ((obj.issuedAt != null && obj.issuedAt !== 0n)) {
          w.uint32(56)
          w.uint64(obj.issuedAt)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          peerId: uint8ArrayAlloc(0),
          seq: 0n,
          signedPeerRecord: uint8ArrayAlloc(0),
          relays: [],
          natType: '',
          leaving: false,
          issuedAt: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.peerId = reader.bytes()
              break
            }
            case 2: {
              obj.seq = reader.uint64()
              break
            }
            case 3: {
              obj.signedPeerRecord = reader.bytes()
              break
            }
            case 4: {
              if (opts.limits?.relays != null && obj.relays.length === opts.limits.relays) {
                throw new MaxLengthError('Decode error - repeated field "relays" had too many elements')
              }

              obj.relays.push(reader.bytes())
              break
            }
            case 5: {
              obj.natType = reader.string()
              break
            }
            case 6: {
              obj.leaving = reader.bool()
              break
            }
            case 7: {
              obj.issuedAt = reader.uint64()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          relays: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.peerId`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.signedPeerRecord`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              if (opts.limits?.relays != null && obj.relays === opts.limits.relays) {
                throw new MaxLengthError('Streaming decode error - repeated field "relays" had too many elements')
              }

              yield {
                field: `${prefix}.relays[]`,
                index: obj.relays,
                value: reader.bytes()
              }

              obj.relays++

              break
            }
            case 5: {
              yield {
                field: `${prefix}.natType`,
                value: reader.string()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.leaving`,
                value: reader.bool()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.issuedAt`,
                value: reader.uint64()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface AnnouncementPeerIdFieldEvent {
    field: '$.peerId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AnnouncementSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export interface AnnouncementSignedPeerRecordFieldEvent {
    field: '$.signedPeerRecord'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AnnouncementRelaysFieldEvent {
    field: '$.relays[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface AnnouncementNatTypeFieldEvent {
    field: '$.natType'
    value: string
  }

  export interface AnnouncementLeavingFieldEvent {
    field: '$.leaving'
    value: boolean
  }

  export interface AnnouncementIssuedAtFieldEvent {
    field: '$.issuedAt'
    value: bigint
  }

  export function encode (obj: Partial<Announcement>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Announcement.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Announcement>): Announcement {
    return decodeMessage(buf, Announcement.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Announcement>): Generator<AnnouncementPeerIdFieldEvent | AnnouncementSeqFieldEvent | AnnouncementSignedPeerRecordFieldEvent | AnnouncementRelaysFieldEvent | AnnouncementNatTypeFieldEvent | AnnouncementLeavingFieldEvent | AnnouncementIssuedAtFieldEvent> {
    return streamMessage(buf, Announcement.codec(), opts)
  }
}

export interface Sealed {
  iv: Uint8Array<ArrayBuffer>
  ciphertext: Uint8Array<ArrayBuffer>
}

export namespace Sealed {
  let _codec: Codec<Sealed>

  export const codec = (): Codec<Sealed> => {
    if (_codec == null) {
      _codec = message<Sealed>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.iv != null && obj.iv.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.iv)
        }

        if ((obj.ciphertext != null && obj.ciphertext.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.ciphertext)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          iv: uint8ArrayAlloc(0),
          ciphertext: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.iv = reader.bytes()
              break
            }
            case 2: {
              obj.ciphertext = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.iv`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.ciphertext`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface SealedIvFieldEvent {
    field: '$.iv'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SealedCiphertextFieldEvent {
    field: '$.ciphertext'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<Sealed>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Sealed.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Sealed>): Sealed {
    return decodeMessage(buf, Sealed.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Sealed>): Generator<SealedIvFieldEvent | SealedCiphertextFieldEvent> {
    return streamMessage(buf, Sealed.codec(), opts)
  }
}

export interface DhtRecord {
  seq: bigint
  sealed: Uint8Array<ArrayBuffer>
  signature: Uint8Array<ArrayBuffer>
}

export namespace DhtRecord {
  let _codec: Codec<DhtRecord>

  export const codec = (): Codec<DhtRecord> => {
    if (_codec == null) {
      _codec = message<DhtRecord>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(8)
          w.uint64(obj.seq)
        }

        if ((obj.sealed != null && obj.sealed.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.sealed)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          seq: 0n,
          sealed: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.seq = reader.uint64()
              break
            }
            case 2: {
              obj.sealed = reader.bytes()
              break
            }
            case 3: {
              obj.signature = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.sealed`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.signature`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface DhtRecordSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export interface DhtRecordSealedFieldEvent {
    field: '$.sealed'
    value: Uint8Array<ArrayBuffer>
  }

  export interface DhtRecordSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<DhtRecord>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, DhtRecord.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<DhtRecord>): DhtRecord {
    return decodeMessage(buf, DhtRecord.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<DhtRecord>): Generator<DhtRecordSeqFieldEvent | DhtRecordSealedFieldEvent | DhtRecordSignatureFieldEvent> {
    return streamMessage(buf, DhtRecord.codec(), opts)
  }
}

export interface AddrBookRequest {
  peerId: Uint8Array<ArrayBuffer>
}

export namespace AddrBookRequest {
  let _codec: Codec<AddrBookRequest>

  export const codec = (): Codec<AddrBookRequest> => {
    if (_codec == null) {
      _codec = message<AddrBookRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.peerId != null && obj.peerId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.peerId)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          peerId: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.peerId = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.peerId`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface AddrBookRequestPeerIdFieldEvent {
    field: '$.peerId'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<AddrBookRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, AddrBookRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AddrBookRequest>): AddrBookRequest {
    return decodeMessage(buf, AddrBookRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AddrBookRequest>): Generator<AddrBookRequestPeerIdFieldEvent> {
    return streamMessage(buf, AddrBookRequest.codec(), opts)
  }
}

export interface AddrBookResponse {
  addrs: Uint8Array<ArrayBuffer>[]
}

export namespace AddrBookResponse {
  let _codec: Codec<AddrBookResponse>

  export const codec = (): Codec<AddrBookResponse> => {
    if (_codec == null) {
      _codec = message<AddrBookResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(10)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          addrs: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.bytes())
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          addrs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.addrs != null && obj.addrs === opts.limits.addrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "addrs" had too many elements')
              }

              yield {
                field: `${prefix}.addrs[]`,
                index: obj.addrs,
                value: reader.bytes()
              }

              obj.addrs++

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface AddrBookResponseAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<AddrBookResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, AddrBookResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AddrBookResponse>): AddrBookResponse {
    return decodeMessage(buf, AddrBookResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AddrBookResponse>): Generator<AddrBookResponseAddrsFieldEvent> {
    return streamMessage(buf, AddrBookResponse.codec(), opts)
  }
}
