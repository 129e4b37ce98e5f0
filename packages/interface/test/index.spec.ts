import { expect } from 'aegir/chai'
import * as api from '../src/index.ts'

describe('@holdfast/interface', () => {
  it('every error class has a stable name equal to its class name', () => {
    const classes = [api.ConnectionClosedError, api.PeerClosingError, api.AddressRequiredError, api.NotRealmMemberError,
      api.RealmAuthError, api.NoAvailablePathError, api.ConnectionLimitError, api.InvalidConfigError,
      api.InvalidArgumentError, api.TimeoutError]
    for (const Class of classes) {
      const err = new Class()
      expect(err).to.be.an.instanceOf(Error)
      expect(err.name).to.equal(Class.name)
      expect(err.message).to.be.a('string').that.is.not.empty()
    }
    expect(new api.UnknownEventTypeError('x:y')).to.have.property('name', 'UnknownEventTypeError')
    expect(new api.AbortError()).to.have.property('name', 'AbortError')
  })

  it('knows every event type at run time and nothing else', () => {
    expect(api.HOLDFAST_EVENT_TYPES).to.include.members(['connection:state', 'peer:gone', 'peer:cleaned', 'path:changed', 'member:left'])
    for (const type of api.HOLDFAST_EVENT_TYPES) {
      expect(api.isHoldfastEventType(type)).to.be.true()
    }
    expect(api.isHoldfastEventType('connection:bogus')).to.be.false()
    expect(api.isHoldfastEventType('toString')).to.be.false()
    expect(api.isHoldfastEventType(42)).to.be.false()
  })

  it('names tags and capabilities as the spec does', () => {
    expect(Object.values(api.TAGS)).to.have.members(['realm-member', 'dht-routing', 'relay-active', 'relay-backup', 'app-protected'])
    for (const capability of Object.values(api.CAPABILITIES)) {
      expect(capability).to.match(/^@holdfast\/[a-z-]+$/)
    }
  })

  it('the system clock runs timers and reads sub-millisecond time', async () => {
    const start = api.systemClock.now()
    await new Promise<void>(resolve => { api.systemClock.setTimeout(resolve, 1) })
    expect(api.systemClock.now()).to.be.greaterThan(start)
    let fired = false
    const handle = api.systemClock.setTimeout(() => { fired = true }, 0)
    api.systemClock.clearTimeout(handle)
    // a later timer firing proves the cleared one had its chance and did not run
    await new Promise<void>(resolve => { api.systemClock.setTimeout(resolve, 2) })
    expect(fired).to.be.false()
  })
})

describe('findService', () => {
  it('finds a registered service of a real node by capability whatever its key, a libp2p service under its usual key, and nothing for an unknown one', async () => {
    const { createLibp2p } = await import('libp2p')
    const { serviceCapabilities } = await import('@libp2p/interface')
    let found: { name: string } | undefined
    let ping: unknown
    let unregistered: unknown = 'not looked up'
    let missing: unknown = 'not looked up'
    const node = await createLibp2p({
      services: {
        anyKeyAtAll: (components: object) => {
          const service = { name: 'provider', [serviceCapabilities]: ['@holdfast/example'] }
          api.registerService(components, service)
          return service
        },
        ping: () => ({ name: 'ping', [serviceCapabilities]: ['@libp2p/ping'] }),
        unregistered: () => ({ name: 'unregistered', [serviceCapabilities]: ['@holdfast/hidden'] }),
        user: (components: object) => ({
          start () {
            found = api.findService(components, '@holdfast/example')
            ping = api.findService(components, '@libp2p/ping')
            unregistered = api.findService(components, '@holdfast/hidden')
            missing = api.findService(components, '@holdfast/absent')
          },
          stop () {}
        })
      }
    })
    await node.stop()
    expect(found?.name).to.equal('provider')
    expect(ping).to.have.property('name', 'ping')
    expect(unregistered).to.be.undefined()
    expect(missing).to.be.undefined()
    expect(api.findService({}, '@holdfast/example')).to.be.undefined()
  })
})

describe('TrackedTimers', () => {
  it('counts pending timers, forgets fired and cleared ones, clears all at once', async () => {
    const fired: string[] = []
    const timers = new api.TrackedTimers(api.systemClock)
    const a = timers.set(() => { fired.push('a') }, 1)
    timers.set(() => { fired.push('b') }, 60_000)
    timers.set(() => { fired.push('c') }, 60_000)
    expect(timers.size).to.equal(3)
    await new Promise<void>(resolve => { api.systemClock.setTimeout(resolve, 5) })
    expect(fired).to.deep.equal(['a'])
    expect(timers.size).to.equal(2)
    timers.clear(a) // already fired: ignored
    timers.clear(undefined)
    expect(timers.size).to.equal(2)
    timers.clearAll()
    expect(timers.size).to.equal(0)
  })
})
