import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { createFakeClock, createNode, expectNoLeaks, stopAll } from '@holdfast/test-utils'
import { expect } from 'aegir/chai'
import { networkSupervisor } from '../src/index.ts'
import { RecordingProcessor, background, cleanup, force, foreground, path, snap } from './helpers.ts'
import type { NetworkSupervisor, NetworkSupervisorInit } from '../src/index.ts'
import type { HoldfastEvents, NetworkEvent, NetworkEventResult } from '@holdfast/interface'
import type { FakeClock } from '@holdfast/test-utils'
import type { Libp2p } from '@libp2p/interface'

const SETTLE = 400

type Node = Libp2p<{ network: NetworkSupervisor }>

async function errorOf (promise: Promise<unknown>): Promise<Error> {
  return promise.then(() => { throw new Error('expected a rejection') }, (err: Error) => err)
}

describe('network supervisor: the reconciler (recording processor, fake clock)', () => {
  let clock: FakeClock
  let processor: RecordingProcessor
  let node: Node | undefined

  async function start (init: NetworkSupervisorInit = {}): Promise<NetworkSupervisor> {
    node = await createNode({ services: { network: networkSupervisor({ clock, processor, adapters: [], debounceWindow: 0, ...init }) } }) as unknown as Node
    return node.services.network
  }

  function record<K extends 'network:batch' | 'network:action'> (supervisor: NetworkSupervisor, type: K): Array<HoldfastEvents[K]> {
    const seen: Array<HoldfastEvents[K]> = []
    supervisor.addEventListener(type, (event) => { seen.push(event.detail as HoldfastEvents[K]) })
    return seen
  }

  beforeEach(() => {
    clock = createFakeClock()
    processor = new RecordingProcessor()
  })

  afterEach(async () => {
    await stopAll([node])
    node = undefined
  })

  it('50 events in one settle window -> one action, 50 results', async () => {
    const supervisor = await start()
    const batches = record(supervisor, 'network:batch')
    const primed = supervisor.networkPathChanged(snap(1, 'available', { wifi: true }))
    await clock.tickAsync(SETTLE)
    await primed
    processor.calls.length = 0
    batches.length = 0

    const events: NetworkEvent[] = Array.from({ length: 50 }, (_, i) => i % 2 === 0 ? path(snap(i + 2, 'unavailable')) : path(snap(i + 2, 'available', { cellular: true })))
    const results: Array<Promise<NetworkEventResult>> = []
    for (const event of events) {
      results.push(supervisor.handle(event))
      await clock.tickAsync(SETTLE / 50 - 1) // all inside the window opened by the first
    }
    expect(processor.calls).to.have.length(0)
    await clock.tickAsync(SETTLE)
    const answered = await Promise.all(results)

    expect(processor.calls).to.deep.equal([{ method: 'restore' }])
    expect(batches).to.have.length(1)
    expect(batches[0].events).to.have.length(50)
    expect(answered).to.have.length(50)
    answered.forEach((result, i) => {
      expect(result.event).to.equal(events[i])
      expect(result.success).to.equal(true)
    })
    expect(supervisor.snapshot()?.sequence).to.equal(51)
    expectNoLeaks(supervisor)
  })

  it('the action starts when the window closes, not before', async () => {
    const supervisor = await start()
    const result = supervisor.forceReconnect('manual-reconnect')
    await clock.tickAsync(SETTLE - 1)
    expect(processor.calls).to.have.length(0)
    await clock.tickAsync(1)
    await result
    expect(processor.calls).to.deep.equal([{ method: 'forceReconnect', reason: 'manual-reconnect' }])
  })

  it('events during a running action go to the next batch; batches never overlap', async () => {
    const supervisor = await start()
    const batches = record(supervisor, 'network:batch')
    processor.hold()
    const first = supervisor.cleanupConnections('user-logout')
    const started = processor.nextCall()
    await clock.tickAsync(SETTLE)
    await started

    // arrives while cleanup-only runs: opens the next batch, whose window closes while the action still runs
    const second = supervisor.networkPathChanged(snap(1, 'unavailable'))
    await clock.tickAsync(SETTLE * 3)
    expect(processor.calls).to.have.length(1)
    // joins the waiting batch: it was queued before that batch could start
    const third = supervisor.appLifecycleChanged({ state: 'background' })
    const next = processor.nextCall()
    processor.release()
    expect((await first).success).to.equal(true)
    await next
    await Promise.all([second, third])

    expect(processor.calls.map(c => c.method)).to.deep.equal(['cleanupOnly', 'offline'])
    expect(processor.maxConcurrent).to.equal(1)
    expect(batches.map(b => b.events.length)).to.deep.equal([1, 2])
    expectNoLeaks(supervisor)
  })

  it('a caller whose result is late gets a TimeoutError; the action still completes', async () => {
    const supervisor = await start({ resultTimeout: 1_000 })
    const actions = record(supervisor, 'network:action')
    processor.hold()
    const waiting = errorOf(supervisor.forceReconnect('probe-failed'))
    const started = processor.nextCall()
    await clock.tickAsync(SETTLE)
    await started
    await clock.tickAsync(1_000 - SETTLE)

    const err = await waiting
    expect(err).to.have.property('name', 'TimeoutError')
    expect(actions).to.have.length(0)
    expect(supervisor.stats().timeouts).to.equal(1)

    const done = new Promise(resolve => { supervisor.addEventListener('network:action', resolve, { once: true }) })
    processor.release()
    await done
    expect(actions).to.deep.equal([{ action: 'force-reconnect', success: true, durationMs: 1_000 - SETTLE }])
    expectNoLeaks(supervisor)
  })

  it('stop rejects every waiting caller, queued or in flight, and leaves nothing behind', async () => {
    const supervisor = await start()
    processor.hold()
    const inFlight = errorOf(supervisor.cleanupConnections('app-terminating'))
    const started = processor.nextCall()
    await clock.tickAsync(SETTLE)
    await started
    const queued = errorOf(supervisor.networkPathChanged(snap(1, 'unavailable')))

    const stopping = node?.stop()
    const errors = await Promise.all([inFlight, queued])
    expect(errors.map(e => e.name)).to.deep.equal(['SupervisorStoppedError', 'SupervisorStoppedError'])
    processor.release()
    await stopping
    expectNoLeaks(supervisor)
    expect(clock.countTimers()).to.equal(0)
    expect((await errorOf(supervisor.forceReconnect('manual-reconnect'))).name).to.equal('SupervisorStoppedError')
  })

  it('a failing action answers every caller of the batch with success false and its error', async () => {
    const supervisor = await start()
    processor.failWith = new Error('relay unreachable')
    const results = [supervisor.forceReconnect('manual-reconnect'), supervisor.appLifecycleChanged({ state: 'background' })]
    await clock.tickAsync(SETTLE)
    for (const result of await Promise.all(results)) {
      expect(result).to.include({ success: false, error: 'relay unreachable' })
    }
    expect(supervisor.stats().failures).to.equal(1)
  })

  it('a noop batch calls nothing and still answers', async () => {
    const supervisor = await start()
    const actions = record(supervisor, 'network:action')
    const result = supervisor.handle(background())
    await clock.tickAsync(SETTLE)
    expect(await result).to.include({ success: true, durationMs: 0 })
    expect(processor.calls).to.have.length(0)
    expect(actions).to.deep.equal([{ action: 'noop', success: true, durationMs: 0 }])
  })

  it('a cleanup followed by a force-reconnect in one batch runs force-reconnect with the cleanup reason', async () => {
    const supervisor = await start()
    const results = [supervisor.handle(cleanup('user-logout')), supervisor.handle(force('manual-reconnect'))]
    await clock.tickAsync(SETTLE)
    await Promise.all(results)
    expect(processor.calls).to.deep.equal([{ method: 'forceReconnect', reason: 'manual-reconnect', cleanupReason: 'user-logout' }])
  })

  it('debounces a custom processor per kind; explicit commands are never debounced', async () => {
    const supervisor = await start({ settleWindow: 100, debounceWindow: 2_000 })
    const run = async (event: NetworkEvent): Promise<void> => {
      const result = supervisor.handle(event)
      await clock.tickAsync(100)
      expect((await result).success).to.equal(true)
    }
    await run(foreground(1_000)) // probe
    await run(foreground(1_000)) // probe again 100 ms later: skipped
    await run(cleanup('manual-reset'))
    await run(cleanup('manual-reset'))
    await clock.tickAsync(2_000)
    await run(foreground(1_000))
    expect(processor.calls.map(c => c.method)).to.deep.equal(['probe', 'cleanupOnly', 'cleanupOnly', 'probe'])
    expect(supervisor.stats().debounced).to.equal(1)
  })

  it('a caller that aborts stops waiting; its event still counts', async () => {
    const supervisor = await start()
    const controller = new AbortController()
    const result = errorOf(supervisor.networkPathChanged(snap(1, 'unavailable'), { signal: controller.signal }))
    controller.abort()
    expect((await result).name).to.equal('AbortError')
    const acted = new Promise(resolve => { supervisor.addEventListener('network:action', resolve, { once: true }) })
    await clock.tickAsync(SETTLE)
    await acted
    expect(processor.calls).to.deep.equal([{ method: 'offline' }])
    expectNoLeaks(supervisor)
  })

  it('publishes network:batch and network:action through the broadcaster too', async () => {
    node = await createNode({ services: { broadcaster: cleanupBroadcaster(), network: networkSupervisor({ clock, processor, adapters: [] }) } }) as unknown as Node
    const supervisor = node.services.network
    const broadcaster = (node.services as unknown as { broadcaster: ReturnType<ReturnType<typeof cleanupBroadcaster>> }).broadcaster
    const seen: string[] = []
    broadcaster.subscribe('network:batch', ({ detail }) => { seen.push(`batch ${detail.action}`) })
    broadcaster.subscribe('network:action', ({ detail }) => { seen.push(`action ${detail.action} ${detail.success}`) })
    const result = supervisor.networkPathChanged(snap(1, 'unavailable'))
    await clock.tickAsync(SETTLE)
    await result
    expect(seen).to.deep.equal(['batch offline', 'action offline true'])
  })
})

describe('network supervisor: bad input and config', () => {
  let node: Node | undefined

  afterEach(async () => {
    await stopAll([node])
    node = undefined
  })

  it('malformed events reject with InvalidArgumentError, change nothing, and the reconciler keeps running', async () => {
    const clock = createFakeClock()
    const processor = new RecordingProcessor()
    node = await createNode({ services: { network: networkSupervisor({ clock, processor, adapters: [] }) } }) as unknown as Node
    const supervisor = node.services.network
    const { isConstrained, ...missingField } = snap(1, 'unavailable')
    const bad: unknown[] = [
      { type: 'teleported' },
      { type: 'network-path-changed' },
      { type: 'network-path-changed', snapshot: missingField },
      { type: 'network-path-changed', snapshot: { ...snap(1, 'available'), transport: undefined } },
      { type: 'app-lifecycle-changed', state: { state: 'foreground', backgroundDurationMs: Number.NaN } },
      { type: 'cleanup-connections', reason: 'because' },
      undefined
    ]
    for (const event of bad) {
      const err = await errorOf(supervisor.handle(event as NetworkEvent))
      expect(err, JSON.stringify(event)).to.have.property('name', 'InvalidArgumentError')
    }
    // a well-formed event with call options that are not AbortOptions
    for (const options of ['fast', { signal: 'stop' }]) {
      const err = await errorOf(supervisor.handle(path(snap(1, 'unavailable')), options as any))
      expect(err, JSON.stringify(options)).to.have.property('name', 'InvalidArgumentError')
    }
    expect(supervisor.stats()).to.include({ invalidEvents: bad.length, events: 0 })
    expectNoLeaks(supervisor)
    expect(clock.countTimers()).to.equal(0)

    const ok = supervisor.networkPathChanged(snap(1, 'unavailable'))
    await clock.tickAsync(SETTLE)
    expect(await ok).to.include({ success: true })
    expect(processor.calls).to.deep.equal([{ method: 'offline' }])
  })

  it('bad config throws InvalidConfigError naming the option', async () => {
    const cases: Array<[NetworkSupervisorInit, string]> = [
      [{ settleWindow: -1 }, 'settleWindow'],
      [{ resultTimeout: 0 }, 'resultTimeout'],
      // a timer of 2^31 ms or more would fire at once: every caller would time out
      [{ resultTimeout: 2 ** 31 }, 'resultTimeout'],
      [{ settleWindow: 2 ** 31 }, 'settleWindow'],
      [{ probeTimeout: Number.POSITIVE_INFINITY }, 'probeTimeout'],
      [{ longBackgroundThreshold: Number.NaN }, 'longBackgroundThreshold'],
      [{ debounceWindow: '2s' as unknown as number }, 'debounceWindow'],
      [{ processor: { offline: async () => {} } as unknown as RecordingProcessor }, 'processor'],
      [{ adapters: [{}] as unknown as [] }, 'adapters'],
      [{ clock: { now: () => 0 } as unknown as FakeClock }, 'clock']
    ]
    for (const [init, option] of cases) {
      const err = await errorOf(createNode({ services: { network: networkSupervisor({ adapters: [], ...init }) } }))
      expect(err, option).to.have.property('name', 'InvalidConfigError')
      expect(err).to.have.property('option', option)
    }
  })
})
