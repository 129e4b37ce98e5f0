import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { TypedEventEmitter } from 'main-event'
import * as api from '../src/index.ts'
import type { CleanupBroadcaster } from '../src/index.ts'

const RELAY = '12D3KooWGSHmAUKiwJkFNbKaHDBmXZyFE5f6vWXkkzWEY1X5f2dW'
const TARGET = '12D3KooWQ6Q5Zb6T9e4nr4MjLWhjGrbGe9sCJhDp8ywp5pGxMkNy'

describe('input checks', () => {
  it('durations: 0 only when allowed, nothing of 2^31 ms or more, never NaN, negative or a non-number', () => {
    expect(api.checkDuration(0, 'x', 'config', { allowZero: true })).to.equal(0)
    expect(api.checkDuration(api.MAX_DURATION_MS, 'x', 'argument')).to.equal(2 ** 31 - 1)
    for (const bad of [0, -1, NaN, Infinity, 2 ** 31, '5', null, undefined]) {
      expect(() => api.checkDuration(bad, 'interval', 'config')).to.throw().with.property('name', 'InvalidConfigError')
    }
    const err = (() => { try { api.checkDuration(2 ** 32, 'timeout', 'argument') } catch (e) { return e } })()
    expect(err).to.have.property('name', 'InvalidArgumentError')
    expect(err).to.have.property('argument', 'timeout')
    expect(() => api.checkDuration(11, 'x', 'config', { max: 10 })).to.throw(/at most 10/)
  })

  it('peer IDs, signals and call options', () => {
    const peer = peerIdFromString(RELAY)
    expect(api.checkPeerId(peer)).to.equal(peer)
    for (const bad of [null, undefined, RELAY, {}, 42]) {
      expect(() => api.checkPeerId(bad)).to.throw().with.property('name', 'InvalidArgumentError')
    }
    expect(api.checkOptions(null)).to.deep.equal({})
    expect(api.checkOptions(undefined)).to.deep.equal({})
    const opts = { signal: AbortSignal.abort() }
    expect(api.checkOptions(opts)).to.equal(opts)
    expect(() => api.checkOptions({ signal: 'soon' } as any)).to.throw().with.property('argument', 'options.signal')
    expect(() => api.checkOptions(7 as any)).to.throw().with.property('name', 'InvalidArgumentError')
    expect(() => api.checkNumber(NaN, 'n', 'config')).to.throw().with.property('option', 'n')
    expect(api.checkInteger(3, 'count', 'config', 1, 5)).to.equal(3)
    for (const bad of [0, 6, 2.5, NaN, '3']) {
      expect(() => api.checkInteger(bad, 'count', 'argument', 1, 5)).to.throw().with.property('argument', 'count')
    }
  })
})

describe('circuit addresses', () => {
  it('tells circuit addresses from the rest, and reads the relay out of them', () => {
    const relay = `/ip4/198.51.100.1/tcp/4001/p2p/${RELAY}`
    for (const addr of [`${relay}/p2p-circuit`, `${relay}/p2p-circuit/p2p/${TARGET}`, `${relay}/p2p-circuit/webrtc/p2p/${TARGET}`]) {
      expect(api.isCircuitAddr(addr.replace('/ip4/198.51.100.1/tcp/4001', '/memory/relay'))).to.be.true()
      expect(api.isCircuitAddr(addr)).to.be.true()
      expect(api.isCircuitAddr(multiaddr(addr))).to.be.true()
      expect(api.relayAddrOf(addr)?.toString()).to.equal(relay)
      expect(api.relayPeerOf(addr)).to.equal(RELAY)
    }
    for (const addr of [relay, '/ip4/198.51.100.1/udp/1/webrtc-direct', '/memory/x/p2p-circuit', 'not an address']) {
      expect(api.isCircuitAddr(addr)).to.be.false()
      expect(api.relayAddrOf(addr)).to.be.undefined()
      expect(api.relayPeerOf(addr)).to.be.undefined()
    }
    expect(api.circuitAddr(relay).toString()).to.equal(`${relay}/p2p-circuit`)
    expect(api.circuitAddr(relay, TARGET).toString()).to.equal(`${relay}/p2p-circuit/p2p/${TARGET}`)
  })
})

describe('emit', () => {
  it('reaches the service\'s listeners and the broadcaster; a failing publish is logged, not thrown', () => {
    const target = new TypedEventEmitter<Record<string, CustomEvent>>()
    const seen: unknown[] = []
    const published: unknown[] = []
    const logged: unknown[] = []
    const log = Object.assign(() => {}, { error: (...args: unknown[]) => logged.push(args), trace: () => {}, enabled: false, newScope: () => log }) as any
    target.addEventListener('peer:held', (event) => seen.push(event.detail))
    const detail = { peer: peerIdFromString(RELAY), until: 1 } as any
    api.emit(target, { publish: (_type: string, d: unknown) => published.push(d) } as unknown as CleanupBroadcaster, log, 'peer:held', detail)
    expect(seen).to.deep.equal([detail])
    expect(published).to.deep.equal([detail])
    api.emit(target, { publish: () => { throw new Error('stopped') } } as unknown as CleanupBroadcaster, log, 'peer:held', detail)
    expect(seen).to.have.length(2)
    expect(logged).to.have.length(1)
  })
})

describe('errors', () => {
  it('reuses libp2p\'s classes where the meaning is the same', async () => {
    const libp2p = await import('@libp2p/interface')
    expect(api.TimeoutError).to.equal(libp2p.TimeoutError)
    expect(api.AbortError).to.equal(libp2p.AbortError)
    const closed = new api.ConnectionClosedError('gone', peerIdFromString(RELAY), 'peer-gone')
    expect(closed).to.be.an.instanceOf(libp2p.ConnectionClosedError)
    expect(closed).to.have.property('name', 'ConnectionClosedError')
    expect(closed).to.have.property('reason', 'peer-gone')
  })

  it('gives every other error a name of its own, not one of libp2p\'s', async () => {
    const libp2p = await import('@libp2p/interface') as Record<string, unknown>
    const own = [api.PeerClosingError, api.AddressRequiredError, api.NotRealmMemberError, api.RealmAuthError,
      api.NoAvailablePathError, api.ConnectionLimitError, api.InvalidConfigError, api.InvalidArgumentError]
    for (const Class of own) {
      expect(libp2p[Class.name], Class.name).to.be.undefined()
      expect(new Class()).to.have.property('name', Class.name)
    }
    expect(new api.InvalidConfigError('bad', 'opt')).to.have.property('option', 'opt')
  })
})

describe('EventListeners', () => {
  it('adds every handler once, counts them, and takes them all off', () => {
    const target = new EventTarget()
    const seen: string[] = []
    const listeners = new api.EventListeners<{ 'a:x': CustomEvent<number>, 'b:y': CustomEvent<string> }>(target, {
      'a:x': (event) => seen.push(`a${event.detail}`),
      'b:y': (event) => seen.push(`b${event.detail}`)
    })
    expect(listeners.size).to.equal(0)
    listeners.add()
    listeners.add()
    expect(listeners.size).to.equal(2)
    target.dispatchEvent(new CustomEvent('a:x', { detail: 1 }))
    target.dispatchEvent(new CustomEvent('b:y', { detail: 'z' }))
    expect(seen).to.deep.equal(['a1', 'bz'])
    listeners.remove()
    expect(listeners.size).to.equal(0)
    target.dispatchEvent(new CustomEvent('a:x', { detail: 2 }))
    expect(seen).to.have.length(2)
  })
})

describe('EventListeners with a throwing handler', () => {
  it('logs the throw and keeps delivering to the other handlers', () => {
    const target = new EventTarget()
    const logged: unknown[] = []
    const log = Object.assign(() => {}, { error: (...args: unknown[]) => logged.push(args[1]), trace: () => {}, enabled: false, newScope: () => log }) as any
    let delivered = 0
    const listeners = new api.EventListeners<{ 'a:x': CustomEvent, 'b:y': CustomEvent }>(target, {
      'a:x': () => { throw new Error('boom') },
      'b:y': () => { delivered++ }
    }, log)
    listeners.add()
    expect(() => target.dispatchEvent(new CustomEvent('a:x'))).to.not.throw()
    target.dispatchEvent(new CustomEvent('b:y'))
    expect(logged).to.deep.equal(['a:x'])
    expect(delivered).to.equal(1)
    listeners.remove()
  })
})
