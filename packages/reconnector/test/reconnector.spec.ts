import { CAPABILITIES, registerService } from '@holdfast/interface'
import { connect, createNode, expectNoLeaks, onceEvent } from '@holdfast/test-utils'
import { seededRandom } from '@holdfast/test-utils'
import { serviceCapabilities } from '@libp2p/interface'
import { expect } from 'aegir/chai'
import { PARKED_TAG_PREFIX } from '../src/constants.ts'
import { defaults, reconnector } from '../src/index.ts'
import { delayBand } from '../src/policy.ts'
import { createHarness, createRemote, detailsOf, goAway, hangUp, restart, STEP_MS, stopAndCheck, WHILE_STARTED } from './helpers.ts'
import type { Harness, Remote } from './helpers.ts'
import type { HoldfastEvent } from '@holdfast/interface'
import type { Libp2p, PeerId } from '@libp2p/interface'

/** Work that only ends when its signal aborts, rejecting with the signal's reason */
const untilAborted = async (signal: AbortSignal): Promise<never> => new Promise((_resolve, reject) => {
  signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
})

/** Each attempt's delay, from the end of the window (first) or the previous failure (others) */
function attemptDelays (h: Harness, peer: PeerId, heldAt: number, window: number): number[] {
  const dials = h.dialsTo(peer)
  return dials.map((d, i) => d.at - (i === 0 ? heldAt + window : dials[i - 1].settledAt as number))
}

describe('reconnector on real nodes (memory transport), reconnector on fake time', () => {
  let h: Harness | undefined
  let remotes: Remote[] = []

  /** a remote the harness watches, connected, then stopped: the harness now holds it */
  /** a remote the harness watches and is connected to */
  async function watchedRemote (harness: Harness): Promise<Remote> {
    const remote = await createRemote()
    remotes.push(remote)
    harness.node.services.reconnector.watch(remote.peerId)
    await connect(harness.node, remote.node)
    return remote
  }

  /** a watched remote, then stopped: the harness now holds it */
  async function watchedThenGone (harness: Harness): Promise<Remote> {
    const remote = await watchedRemote(harness)
    await goAway(harness, remote)
    return remote
  }
  let others: Libp2p[] = []

  afterEach(async () => {
    await stopAndCheck(h, [...remotes.map(r => r.node), ...others])
    h = undefined
    remotes = []
    others = []
  })

  it('outage of 2 s, the peer comes back by itself: no dial, no peer:offline, peer:recovered (returned)', async () => {
    h = await createHarness({ random: seededRandom(1) })
    const b = await createRemote()
    remotes.push(b)
    const seen: Array<HoldfastEvent> = []
    h.node.services.broadcaster?.subscribe('*', (event) => { seen.push(event) })
    h.node.services.reconnector.watch(b.peerId)
    await connect(h.node, b.node)
    expect(h.count('peer:online')).to.equal(1)

    await hangUp(h, b.node)
    expect(h.node.services.reconnector.state(b.peerId)).to.equal('held')
    expect(h.node.services.reconnector.held().map(String)).to.deep.equal([b.peerId.toString()])
    await h.advance(2_000)
    const recovered = new Promise(resolve => { h?.node.services.reconnector.addEventListener('peer:recovered', resolve, { once: true }) })
    await connect(b.node, h.node)
    await recovered

    expect(detailsOf(h, 'peer:recovered')).to.deep.equal([{ peer: b.peerId, downtimeMs: 2_000, attempts: 0, how: 'returned' }])
    expect(h.dials).to.have.lengthOf(0)
    expect(h.count('peer:offline')).to.equal(0)
    expect(h.count('peer:online')).to.equal(1)
    expect(h.count('peer:reconnecting')).to.equal(0)
    expect(h.node.services.reconnector.state(b.peerId)).to.equal('connected')
    // nothing is scheduled any more: a minute later still no dial
    expect(h.node.services.reconnector.internalSizes()).to.include({ held: 0, timers: 0 })
    await h.clock.tickAsync(60_000)
    expect(h.dials).to.have.lengthOf(0)
    // the same events reached one broadcaster subscription
    expect(seen.filter(e => e.type.startsWith('peer:') && ['peer:held', 'peer:recovered', 'peer:online'].includes(e.type)).map(e => e.type))
      .to.deep.equal(['peer:online', 'peer:held', 'peer:recovered'])
  })

  it('two ends that hold each other do not cross dials: the higher peer ID yields crossingDelay, the lower one dials, the higher sees it return', async () => {
    // both in the middle of the first band: without the yield the two dials would start at the same instant
    const a = await createHarness({ random: () => 0.5, crossingDelay: defaults.crossingDelay })
    const b = await createHarness({ random: () => 0.5, crossingDelay: defaults.crossingDelay })
    others.push(a.node, b.node)
    const [low, high] = a.node.peerId.toString() < b.node.peerId.toString() ? [a, b] : [b, a]
    low.node.services.reconnector.watch(high.node.peerId)
    high.node.services.reconnector.watch(low.node.peerId)
    await connect(low.node, high.node)
    const highGone = onceEvent(high.node, 'peer:disconnect', p => p.equals(low.node.peerId))
    await hangUp(low, high.node)
    await highGone
    const heldAt = low.clock.now()
    expect(high.clock.now()).to.equal(heldAt)

    // both clocks in step, until the higher end has its peer back
    for (let t = 0; t < defaults.toleranceWindow + 3 * defaults.initialDelay && high.count('peer:recovered') === 0; t += STEP_MS) {
      await low.advance(STEP_MS)
      await high.advance(STEP_MS)
    }
    expect(low.dials.map(d => d.at - heldAt)).to.deep.equal([defaults.toleranceWindow + defaults.initialDelay])
    expect(high.dials).to.have.lengthOf(0)
    expect(detailsOf(high, 'peer:reconnecting').map(r => r.delayMs)).to.deep.equal([defaults.initialDelay + defaults.crossingDelay])
    expect(detailsOf(high, 'peer:recovered')).to.have.lengthOf(1)
    expect(detailsOf(high, 'peer:recovered')[0]).to.include({ how: 'returned', attempts: 0 })
    expect(detailsOf(low, 'peer:recovered')[0]).to.include({ how: 'reconnected', attempts: 1 })
    expect(low.node.getConnections(high.node.peerId)).to.have.lengthOf(1)
    expect(high.node.getConnections(low.node.peerId)).to.have.lengthOf(1)
  })

  it('outage of 20 s, the peer is back after 12 s: attempts at jittered times inside their bands, recovered (reconnected)', async () => {
    h = await createHarness({ random: seededRandom(2) })
    const b = await watchedThenGone(h)
    const heldAt = h.clock.now()

    await h.advance(12_000)
    const failedBefore = h.dialsTo(b.peerId).length
    expect(failedBefore).to.be.at.least(2)
    expect(h.dialsTo(b.peerId).every(d => d.ok === false)).to.equal(true)
    await restart(b)
    await h.advance(20_000, () => h?.count('peer:recovered') === 1)

    const dials = h.dialsTo(b.peerId)
    const delays = attemptDelays(h, b.peerId, heldAt, defaults.toleranceWindow)
    delays.forEach((delay, n) => {
      const [min, max] = delayBand(n, defaults)
      expect(delay, `attempt ${n + 1}`).to.be.within(min, max)
    })
    expect(dials.at(-1)?.ok).to.equal(true)
    expect(dials.at(-1)?.at).to.be.at.least(heldAt + 12_000)
    const [recovered] = detailsOf(h, 'peer:recovered')
    expect(recovered).to.include({ how: 'reconnected', attempts: dials.length })
    expect(recovered.downtimeMs).to.be.within(dials.at(-1)?.at as number - heldAt, (dials.at(-1)?.at as number) - heldAt + STEP_MS)
    // each peer:reconnecting announced the delay that was then waited
    expect(detailsOf(h, 'peer:reconnecting').map(r => r.delayMs)).to.deep.equal(delays)
    expect(h.count('peer:offline')).to.equal(0)
    expect(h.node.services.reconnector.state(b.peerId)).to.equal('connected')
  })

  it('peer gone for good, maxAttempts first: exactly 3 dials, peer:removed (attempts-exhausted), broadcaster cleanup ran, nothing left', async () => {
    h = await createHarness({ maxAttempts: 3, stateHoldTime: 120_000, random: seededRandom(3) })
    const b = await createRemote()
    remotes.push(b)
    h.node.services.reconnector.watch(b.peerId)
    await connect(h.node, b.node)
    await goAway(h, b)
    const broadcaster = h.node.services.broadcaster
    if (broadcaster == null) {
      throw new Error('the harness has a broadcaster')
    }
    // work bound to the held peer: only the removal's cleanup ends it
    const tracked = broadcaster.track(b.peerId, untilAborted).then(() => 'fulfilled', (err: Error & { reason?: string }) => `${err.name}:${err.reason}`)
    const cleaned = new Promise<string>(resolve => broadcaster.subscribe('peer:cleaned', ({ detail }) => { if (detail.reason === 'reconnect-gave-up') { resolve(detail.reason) } }))

    await h.advance(120_000, () => h?.count('peer:removed') === 1)

    expect(h.dialsTo(b.peerId)).to.have.lengthOf(3)
    expect(detailsOf(h, 'peer:removed')).to.deep.equal([{ peer: b.peerId, reason: 'attempts-exhausted' }])
    expect(h.count('peer:offline')).to.equal(1)
    expect(h.events.at(-1)?.type).to.equal('peer:offline')
    expect(await cleaned).to.equal('reconnect-gave-up')
    expect(await tracked).to.equal('ConnectionClosedError:reconnect-gave-up')
    expect(h.node.services.reconnector.state(b.peerId)).to.equal(undefined)
    expectNoLeaks(h.node.services.reconnector, ['watched', ...WHILE_STARTED])
    expect(h.clock.countTimers()).to.equal(0)
    // and nothing more happens
    await h.advance(1_000)
    expect(h.dialsTo(b.peerId)).to.have.lengthOf(3)
  })

  it('peer gone for good, stateHoldTime first (defaults, middle of each band): 4 dials, peer:removed (hold-expired) at 30 s', async () => {
    h = await createHarness({ random: () => 0.5 })
    const b = await watchedThenGone(h)
    const heldAt = h.clock.now()

    await h.advance(40_000, () => h?.count('peer:removed') === 1)

    // attempts near 6, 8, 12 and 20 s; the 5th would be near 36 s, after the hold ran out
    expect(h.dialsTo(b.peerId)).to.have.lengthOf(4)
    expect(detailsOf(h, 'peer:removed')).to.deep.equal([{ peer: b.peerId, reason: 'hold-expired' }])
    expect(h.events.find(e => e.type === 'peer:removed')?.at).to.equal(heldAt + defaults.stateHoldTime)
    expectNoLeaks(h.node.services.reconnector, ['watched', ...WHILE_STARTED])
  })

  it('paused: no dial however long, hold frozen; resume: one attempt per held peer inside the first band', async () => {
    h = await createHarness({ random: seededRandom(4) })
    const b = await watchedRemote(h)
    const c = await watchedRemote(h)
    await goAway(h, b)
    h.node.services.reconnector.pause()
    await goAway(h, c)

    await h.clock.tickAsync(600_000)
    expect(h.dials).to.have.lengthOf(0)
    expect(h.clock.countTimers()).to.equal(0)
    expect(h.node.services.reconnector.internalSizes()).to.include({ held: 2, timers: 0 })
    expect(h.count('peer:removed')).to.equal(0)

    await restart(b)
    const resumedAt = h.clock.now()
    h.node.services.reconnector.resume()
    const [min, max] = delayBand(0, defaults)
    await h.advance(max + STEP_MS)

    for (const r of [b, c]) {
      const dials = h.dialsTo(r.peerId)
      expect(dials, r === b ? 'b' : 'c').to.have.lengthOf(1)
      expect(dials[0].at - resumedAt).to.be.within(min, max)
    }
    expect(detailsOf(h, 'peer:recovered').map(r => [r.peer.toString(), r.how])).to.deep.equal([[b.peerId.toString(), 'reconnected']])
    expect(h.node.services.reconnector.state(c.peerId)).to.equal('reconnecting')
    expect(h.count('peer:offline')).to.equal(0)
  })

  it('a failure while paused is not counted, and reconnectNow dials at once outside the schedule', async () => {
    h = await createHarness({ maxAttempts: 1, random: seededRandom(5) })
    const b = await createRemote()
    remotes.push(b)
    h.node.services.reconnector.watch(b.peerId)
    await connect(h.node, b.node)
    await goAway(h, b)
    h.node.services.reconnector.pause()
    // maxAttempts is 1, yet the failed dial made while paused does not remove the peer
    await h.node.services.reconnector.reconnectNow(b.peerId)
    expect(h.dials).to.have.lengthOf(1)
    expect(h.node.services.reconnector.state(b.peerId)).to.equal('reconnecting')
    await restart(b)
    await h.node.services.reconnector.reconnectNow()
    expect(h.dials).to.have.lengthOf(2)
    expect(detailsOf(h, 'peer:recovered')[0]).to.include({ how: 'reconnected', attempts: 2 })
    h.node.services.reconnector.resume()
    expect(h.node.services.reconnector.state(b.peerId)).to.equal('connected')
  })

  it('one clock timer for many held peers, and unwatch removes a held peer (unwatched)', async () => {
    h = await createHarness({ random: seededRandom(6) })
    const peers = await Promise.all(Array.from({ length: 5 }, async () => createRemote()))
    remotes.push(...peers)
    for (const r of peers) {
      h.node.services.reconnector.watch(r.peerId)
      await connect(h.node, r.node)
    }
    for (const r of peers) {
      await hangUp(h, r.node)
    }
    expect(h.node.services.reconnector.internalSizes()).to.include({ held: 5, timers: 1 })
    expect(h.clock.countTimers()).to.equal(1)

    h.node.services.reconnector.unwatch(peers[0].peerId)
    expect(detailsOf(h, 'peer:removed')).to.deep.equal([{ peer: peers[0].peerId, reason: 'unwatched' }])
    expect(h.node.services.reconnector.held()).to.have.lengthOf(4)
  })

  it('holds the peers the holdfast connection manager protects (found by capability; a stand-in service here, the real one is built beside this package)', async () => {
    const b = await createRemote()
    const c = await createRemote()
    remotes.push(b, c)
    const protectedPeers = new Set([b.peerId.toString()])
    const manager = (components: object): object => {
      const service = {
        [serviceCapabilities]: [CAPABILITIES.connectionManager],
        isProtected: (peer: PeerId) => protectedPeers.has(peer.toString())
      }
      registerService(components, service)
      return service
    }
    h = await createHarness({}, { services: { holdfastConnectionManager: manager } })
    await connect(h.node, b.node)
    await connect(h.node, c.node)
    await hangUp(h, b.node)
    await hangUp(h, c.node)
    expect(h.node.services.reconnector.held().map(String)).to.deep.equal([b.peerId.toString()])
  })

  it('the watch predicate picks the peers; others are not held', async () => {
    const b = await createRemote()
    const c = await createRemote()
    remotes.push(b, c)
    h = await createHarness({ watch: (peer) => peer.equals(b.peerId) })
    await connect(h.node, b.node)
    await connect(h.node, c.node)
    await hangUp(h, b.node)
    await hangUp(h, c.node)
    expect(h.node.services.reconnector.state(b.peerId)).to.equal('held')
    expect(h.node.services.reconnector.state(c.peerId)).to.equal(undefined)
    expect(detailsOf(h, 'peer:online').map(d => d.peer.toString())).to.deep.equal([b.peerId.toString()])
  })

  it('keeps libp2p\'s keep-alive reconnect off watched peers (tags parked) while unwatched keep-alive peers are still redialed by libp2p', async () => {
    h = await createHarness({}, { broadcaster: false })
    const { node } = h
    const b = await createRemote()
    const c = await createRemote()
    remotes.push(b, c)
    const cm = (node as unknown as { components: { connectionManager: { openConnection(...args: any[]): Promise<unknown> } } }).components.connectionManager
    const opened: string[] = []
    const original = cm.openConnection.bind(cm)
    cm.openConnection = async (peer: unknown, ...rest: any[]) => {
      opened.push(String(peer))
      return original(peer, ...rest)
    }
    node.services.reconnector.watch(b.peerId)
    await connect(node, b.node)
    await connect(node, c.node)
    const parked = onceEvent(node, 'peer:update', ({ peer }) => peer.id.equals(b.peerId) && peer.tags.has(`${PARKED_TAG_PREFIX}keep-alive-test`))
    await node.peerStore.merge(b.peerId, { tags: { 'keep-alive-test': { value: 1 } } })
    await node.peerStore.merge(c.peerId, { tags: { 'keep-alive-test': { value: 1 } } })
    await parked
    expect([...(await node.peerStore.get(b.peerId)).tags.keys()]).to.include(`${PARKED_TAG_PREFIX}keep-alive-test`).and.not.include('keep-alive-test')
    opened.length = 0

    // B first: libp2p's decision about B is made before the one about C, which we wait for
    await hangUp(h, b.node)
    const cBack = onceEvent(node, 'peer:connect', p => p.equals(c.peerId))
    await hangUp(h, c.node)
    await cBack

    expect(opened.filter(p => p === c.peerId.toString()).length).to.be.at.least(1)
    expect(opened.filter(p => p === b.peerId.toString())).to.deep.equal([])
    expect(node.getConnections(b.peerId)).to.have.lengthOf(0)
    expect(node.services.reconnector.state(b.peerId)).to.equal('held')

    // unwatching hands the peer back to libp2p: the tag is restored
    const restored = onceEvent(node, 'peer:update', ({ peer }) => peer.id.equals(b.peerId) && peer.tags.has('keep-alive-test'))
    node.services.reconnector.unwatch(b.peerId)
    await restored
    expect([...(await node.peerStore.get(b.peerId)).tags.keys()]).to.not.include(`${PARKED_TAG_PREFIX}keep-alive-test`)
  })

  it('giving up drops the parked keep-alive tags (as libp2p does when it gives up); stop restores those of the peers still watched', async () => {
    h = await createHarness({ maxAttempts: 1, random: seededRandom(7) }, { broadcaster: false })
    const b = await watchedRemote(h)
    const c = await watchedRemote(h)
    for (const r of [b, c]) {
      const parked = onceEvent(h.node, 'peer:update', ({ peer }) => peer.id.equals(r.peerId) && peer.tags.has(`${PARKED_TAG_PREFIX}keep-alive-x`))
      await h.node.peerStore.merge(r.peerId, { tags: { 'keep-alive-x': { value: 7 } } })
      await parked
    }
    const dropped = onceEvent(h.node, 'peer:update', ({ peer }) => peer.id.equals(b.peerId) && !peer.tags.has(`${PARKED_TAG_PREFIX}keep-alive-x`))
    await goAway(h, b)
    await h.advance(10_000, () => h?.count('peer:removed') === 1)
    expect(detailsOf(h, 'peer:removed')[0]).to.include({ reason: 'attempts-exhausted' })
    await dropped
    const bTags = [...(await h.node.peerStore.get(b.peerId)).tags.keys()]
    expect(bTags.filter(t => t.includes('keep-alive'))).to.deep.equal([])

    const peerStore = h.node.peerStore
    await h.node.stop()
    const cTags = (await peerStore.get(c.peerId)).tags
    expect(cTags.get('keep-alive-x')).to.deep.include({ value: 7 })
    expect(cTags.has(`${PARKED_TAG_PREFIX}keep-alive-x`)).to.equal(false)
  })

  it('rejects bad config with InvalidConfigError naming the option, and bad arguments with InvalidArgumentError without a state change', async () => {
    // every option's checks are in config.spec.ts: here, that the service is built through them
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ maxDelay: 100, initialDelay: 1_000 }, 'maxDelay'],
      [{ watch: 'all' }, 'watch'],
      [{ clock: {} }, 'clock']
    ]
    const outcomes = await Promise.all(bad.map(async ([init]) => createNode({ services: { reconnector: reconnector(init as any) } }).then(
      (node) => { others.push(node); return 'accepted' },
      (err: Error & { option?: string }) => `${err.name}:${err.option}`
    )))
    expect(outcomes).to.deep.equal(bad.map(([, option]) => `InvalidConfigError:${option}`))

    h = await createHarness()
    const service = h.node.services.reconnector
    service.pause()
    expect(() => { service.resume({ resetBackoff: 'yes' } as any) }).to.throw().with.property('name', 'InvalidArgumentError')
    expect(() => { service.watch('peer' as any) }).to.throw().with.property('name', 'InvalidArgumentError')
    expect(() => { service.state({} as any) }).to.throw().with.property('name', 'InvalidArgumentError')
    await service.reconnectNow(42 as any).then(() => expect.fail('accepted'), (err: Error) => { expect(err.name).to.equal('InvalidArgumentError') })
    expect(service.internalSizes()).to.include({ watched: 0, peers: 0 })
    // still paused: the bad resume changed nothing
    const b = await createRemote()
    remotes.push(b)
    service.watch(b.peerId)
    await connect(h.node, b.node)
    await hangUp(h, b.node)
    await h.clock.tickAsync(60_000)
    expect(h.dials).to.have.lengthOf(0)
  })
})
