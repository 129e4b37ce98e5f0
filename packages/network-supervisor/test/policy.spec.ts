import { expect } from 'aegir/chai'
import fc from 'fast-check'
import { RANK, classifyInterface, contentFromBrowser, contentFromInterfaces, eventProblem, isDebounced, planRecovery, sameContent, selectRecoveryAction } from '../src/policy.ts'
import { background, cleanup, force, foreground, path, snap } from './helpers.ts'
import type { Contribution } from '../src/policy.ts'
import type { NetworkEvent, NetworkSnapshot } from '@holdfast/interface'

const THRESHOLD = { longBackgroundThreshold: 30_000 }
const select = (events: NetworkEvent[], before?: NetworkSnapshot): string => selectRecoveryAction(events, before, THRESHOLD)

describe('selectRecoveryAction: the action table', () => {
  const wifi = snap(1, 'available', { wifi: true })

  it('an empty batch is a noop', () => {
    expect(select([], wifi)).to.equal('noop')
  })

  it('cleanup-connections -> cleanup-only, with its reason', () => {
    const plan = planRecovery([cleanup('user-logout')], wifi, THRESHOLD)
    expect(plan).to.include({ action: 'cleanup-only', cleanupReason: 'user-logout' })
  })

  it('cleanup-connections then force-reconnect -> force-reconnect whose cleanup carries the cleanup reason', () => {
    const plan = planRecovery([cleanup('manual-reset'), force('manual-reconnect')], wifi, THRESHOLD)
    expect(plan).to.include({ action: 'force-reconnect', contribution: 'cleanup-then-reconnect', cleanupReason: 'manual-reset', reconnectReason: 'manual-reconnect' })
  })

  it('force-reconnect then cleanup-connections -> cleanup-only (cleanup-only outranks force-reconnect)', () => {
    expect(planRecovery([force(), cleanup('app-terminating')], wifi, THRESHOLD)).to.include({ action: 'cleanup-only', cleanupReason: 'app-terminating' })
  })

  it('force-reconnect -> force-reconnect, with its reason and no cleanup reason', () => {
    const plan = planRecovery([force('stale-connection-suspected')], wifi, THRESHOLD)
    expect(plan).to.include({ action: 'force-reconnect', reconnectReason: 'stale-connection-suspected' })
    expect(plan).to.not.have.property('cleanupReason')
  })

  it('path changed, last snapshot unavailable -> offline', () => {
    expect(select([path(snap(2, 'unavailable'))], wifi)).to.equal('offline')
    expect(select([path(snap(2, 'available', { cellular: true })), path(snap(3, 'unavailable'))], wifi)).to.equal('offline')
  })

  it('path changed to available from unavailable, from unknown, or with no snapshot before -> restore', () => {
    expect(select([path(snap(2, 'available', { wifi: true }))], snap(1, 'unavailable'))).to.equal('restore')
    expect(select([path(snap(2, 'available', { wifi: true }))], snap(1, 'unknown'))).to.equal('restore')
    expect(select([path(snap(2, 'available', { wifi: true }))])).to.equal('restore')
  })

  it('transport flags changed -> restore (wifi to cellular, VPN attached, ethernet added)', () => {
    expect(select([path(snap(2, 'available', { cellular: true }))], wifi)).to.equal('restore')
    expect(select([path(snap(2, 'available', { wifi: true, vpn: true }))], wifi)).to.equal('restore')
    expect(select([path(snap(2, 'available', { wifi: true, ethernet: true }))], wifi)).to.equal('restore')
  })

  it('unavailable then available again inside one batch -> restore (compared with the snapshot before)', () => {
    expect(select([path(snap(2, 'unavailable')), path(snap(3, 'available', { wifi: true }))], wifi)).to.equal('restore')
  })

  it('a transport switch that comes back inside one batch -> restore', () => {
    expect(select([path(snap(2, 'available', { cellular: true })), path(snap(3, 'available', { wifi: true }))], wifi)).to.equal('restore')
  })

  it('only expensive / constrained changed -> noop', () => {
    expect(select([path(snap(2, 'available', { wifi: true }, { isExpensive: true }))], wifi)).to.equal('noop')
    expect(select([path(snap(2, 'available', { wifi: true }, { isConstrained: true }))], wifi)).to.equal('noop')
  })

  it('duplicate snapshot: same sequence, older sequence, or same content -> noop', () => {
    expect(select([path(snap(1, 'unavailable'))], wifi)).to.equal('noop')
    expect(select([path(snap(0, 'unavailable'))], wifi)).to.equal('noop')
    expect(select([path(snap(2, 'available', { wifi: true }))], wifi)).to.equal('noop')
    expect(select([path(snap(2, 'unavailable'))], snap(1, 'unavailable'))).to.equal('noop')
  })

  it('the last accepted snapshot becomes the new current one; a stale one changes nothing', () => {
    expect(planRecovery([path(snap(2, 'unavailable')), path(snap(3, 'available', { cellular: true }))], wifi, THRESHOLD).snapshot?.sequence).to.equal(3)
    expect(planRecovery([path(snap(0, 'unavailable'))], wifi, THRESHOLD).snapshot).to.equal(wifi)
    expect(planRecovery([path(snap(5, 'available')), path(snap(4, 'unavailable'))], wifi, THRESHOLD)).to.include({ action: 'restore' })
  })

  it('the platform lost track (available -> unknown) -> probe', () => {
    expect(select([path(snap(2, 'unknown'))], wifi)).to.equal('probe')
  })

  it('foreground after >= longBackgroundThreshold -> force-reconnect (long-background); after less -> probe', () => {
    expect(planRecovery([foreground(30_000)], wifi, THRESHOLD)).to.include({ action: 'force-reconnect', reconnectReason: 'long-background' })
    expect(select([foreground(45_000)], wifi)).to.equal('force-reconnect')
    expect(select([foreground(29_999)], wifi)).to.equal('probe')
    expect(select([foreground(0)], wifi)).to.equal('probe')
  })

  it('background -> noop', () => {
    expect(select([background()], wifi)).to.equal('noop')
  })

  it('the threshold is an option', () => {
    expect(selectRecoveryAction([foreground(5_000)], wifi, { longBackgroundThreshold: 5_000 })).to.equal('force-reconnect')
  })
})

// ---------------------------------------------------------------- properties

const transportArb = fc.record({ wifi: fc.boolean(), cellular: fc.boolean(), ethernet: fc.boolean(), vpn: fc.boolean(), other: fc.boolean() })
const contentArb = fc.record({
  availability: fc.constantFrom('unknown' as const, 'available' as const, 'unavailable' as const),
  transport: transportArb,
  isExpensive: fc.boolean(),
  isConstrained: fc.boolean()
})
const nonPathArb: fc.Arbitrary<NetworkEvent> = fc.oneof(
  fc.constantFrom('app-terminating' as const, 'user-logout' as const, 'stale-connection-suspected' as const, 'manual-reset' as const).map(reason => cleanup(reason)),
  fc.constantFrom('network-path-changed' as const, 'long-background' as const, 'probe-failed' as const, 'manual-reconnect' as const).map(reason => force(reason)),
  fc.nat(60_000).map(foreground),
  fc.constant(background())
)
/** a batch: path events get increasing sequences above the one before */
const batchArb = fc.tuple(
  fc.option(contentArb, { nil: undefined }),
  fc.array(fc.oneof(contentArb.map(c => ({ path: c })), nonPathArb.map(e => ({ other: e }))), { maxLength: 12 })
).map(([beforeContent, items]) => {
  const before = beforeContent === undefined ? undefined : { sequence: 10, ...beforeContent }
  let sequence = 10
  const events = items.map(item => 'path' in item ? path({ sequence: ++sequence, ...item.path }) : item.other)
  return { before, events }
})

/** each event's own contribution, judged alone; the path events judged together */
function contributions (events: NetworkEvent[], before: NetworkSnapshot | undefined): Contribution[] {
  const out: Contribution[] = []
  events.forEach((event, i) => {
    if (event.type === 'cleanup-connections') {
      out.push(events.slice(i + 1).some(e => e.type === 'force-reconnect') ? 'cleanup-then-reconnect' : 'cleanup-only')
    } else if (event.type !== 'network-path-changed') {
      out.push(planRecovery([event], before, THRESHOLD).contribution)
    }
  })
  out.push(planRecovery(events.filter(e => e.type === 'network-path-changed'), before, THRESHOLD).contribution)
  return out
}

describe('selectRecoveryAction: properties (fast-check)', () => {
  it('the chosen action is always the highest-ranked one present', () => {
    fc.assert(fc.property(batchArb, ({ before, events }) => {
      const plan = planRecovery(events, before, THRESHOLD)
      const best = contributions(events, before).sort((a, b) => RANK.indexOf(a) - RANK.indexOf(b))[0]
      expect(plan.contribution).to.equal(best)
      expect(plan.action).to.equal(best === 'cleanup-then-reconnect' ? 'force-reconnect' : best)
    }), { numRuns: 2_000 })
  })

  it('only the last snapshot decides availability', () => {
    fc.assert(fc.property(batchArb, ({ before, events }) => {
      const paths = events.filter(e => e.type === 'network-path-changed')
      const last = paths.at(-1)
      if (last === undefined) {
        return
      }
      const action = selectRecoveryAction(paths, before, THRESHOLD)
      if (last.snapshot.availability === 'available') {
        // whatever came before it in the batch, an available last snapshot never means offline
        expect(action).to.be.oneOf(['restore', 'noop'])
      }
      if (before === undefined || !sameContent(last.snapshot, before)) {
        // a last snapshot that says something new decides alone: offline exactly when it is
        // unavailable, and flipping the availability of the earlier ones changes nothing
        expect(action === 'offline').to.equal(last.snapshot.availability === 'unavailable')
        const flipped = paths.map((e, i) => i === paths.length - 1 || e.type !== 'network-path-changed'
          ? e
          : path({ ...e.snapshot, availability: e.snapshot.availability === 'unavailable' ? 'available' : 'unavailable' }))
        expect(selectRecoveryAction(flipped, before, THRESHOLD) === 'offline').to.equal(action === 'offline')
      }
      expect(planRecovery(paths, before, THRESHOLD).snapshot).to.deep.equal(last.snapshot)
    }), { numRuns: 2_000 })
  })

  it('is a pure function: the same batch gives the same plan', () => {
    fc.assert(fc.property(batchArb, ({ before, events }) => {
      expect(planRecovery(events, before, THRESHOLD)).to.deep.equal(planRecovery(structuredClone(events), structuredClone(before), THRESHOLD))
    }), { numRuns: 300 })
  })
})

describe('eventProblem', () => {
  it('accepts every well-formed event', () => {
    for (const event of [path(snap(1, 'available', { wifi: true })), foreground(10), background(), cleanup(), force()]) {
      expect(eventProblem(event)).to.equal(undefined)
    }
  })

  it('names what is wrong with a malformed one', () => {
    const { transport, ...noTransport } = snap(1, 'available')
    const cases: Array<[unknown, RegExp]> = [
      [null, /object/],
      ['network-path-changed', /object/],
      [{ type: 'teleported' }, /unknown event type/],
      [{ snapshot: snap(1, 'available') }, /unknown event type/],
      [{ type: 'network-path-changed' }, /snapshot must be an object/],
      [{ type: 'network-path-changed', snapshot: noTransport }, /transport/],
      [{ type: 'network-path-changed', snapshot: { ...snap(1, 'available'), sequence: Number.NaN } }, /sequence/],
      [{ type: 'network-path-changed', snapshot: { ...snap(1, 'available'), availability: 'online' } }, /availability/],
      [{ type: 'network-path-changed', snapshot: { ...snap(1, 'available'), transport: { ...transport, vpn: 'yes' } } }, /transport\.vpn/],
      [{ type: 'network-path-changed', snapshot: { ...snap(1, 'available'), isExpensive: undefined } }, /isExpensive/],
      [{ type: 'app-lifecycle-changed', state: { state: 'foreground' } }, /backgroundDurationMs/],
      [{ type: 'app-lifecycle-changed', state: { state: 'foreground', backgroundDurationMs: -1 } }, /backgroundDurationMs/],
      [{ type: 'app-lifecycle-changed', state: 'background' }, /state\.state/],
      [{ type: 'cleanup-connections', reason: 'because' }, /cleanup reason/],
      [{ type: 'force-reconnect' }, /reconnect reason/]
    ]
    for (const [event, message] of cases) {
      expect(eventProblem(event), JSON.stringify(event)).to.match(message)
    }
  })
})

describe('isDebounced', () => {
  it('skips offline / probe / restore of the same kind within the window, never cleanup or force-reconnect', () => {
    expect(isDebounced('restore', 1_000, 2_999, 2_000)).to.equal(true)
    expect(isDebounced('restore', 1_000, 3_000, 2_000)).to.equal(false)
    expect(isDebounced('restore', undefined, 3_000, 2_000)).to.equal(false)
    expect(isDebounced('offline', 1_000, 1_000, 2_000)).to.equal(true)
    expect(isDebounced('probe', 1_000, 1_000, 0)).to.equal(false)
    expect(isDebounced('cleanup-only', 1_000, 1_000, 2_000)).to.equal(false)
    expect(isDebounced('force-reconnect', 1_000, 1_000, 2_000)).to.equal(false)
  })
})

describe('adapter decisions', () => {
  it('classifies interfaces by name', () => {
    const expected: Record<string, string> = {
      wlan0: 'wifi',
      wlp2s0: 'wifi',
      en0: 'ethernet',
      enp3s0: 'ethernet',
      eth0: 'ethernet',
      tun0: 'vpn',
      wg0: 'vpn',
      utun3: 'vpn',
      wwan0: 'cellular',
      rmnet_data0: 'cellular',
      lo: 'ignored',
      lo0: 'ignored',
      docker0: 'ignored',
      'br-1a2b': 'ignored',
      veth12ab: 'ignored',
      foo0: 'other'
    }
    for (const [name, kind] of Object.entries(expected)) {
      expect(classifyInterface(name), name).to.equal(kind)
    }
  })

  it('a snapshot from the interface table: loopback, link-local and bridges ignored', () => {
    const v4 = (address: string, internal = false): { address: string, family: string, internal: boolean } => ({ address, family: 'IPv4', internal })
    expect(contentFromInterfaces({ lo: [v4('127.0.0.1', true)], docker0: [v4('172.17.0.1')], eth0: [v4('169.254.3.4'), { address: 'fe80::1', family: 'IPv6', internal: false }] }))
      .to.deep.include({ availability: 'unavailable', transport: { wifi: false, cellular: false, ethernet: false, vpn: false, other: false } })
    expect(contentFromInterfaces({ wlan0: [v4('192.168.1.5')], wg0: [v4('10.0.0.2')] }))
      .to.deep.equal({ availability: 'available', transport: { wifi: true, cellular: false, ethernet: false, vpn: true, other: false }, isExpensive: false, isConstrained: false })
    expect(contentFromInterfaces({ rmnet0: [v4('100.64.1.2')] })).to.include({ isExpensive: true })
  })

  it('a snapshot from the browser: onLine, connection.type and saveData', () => {
    expect(contentFromBrowser({ onLine: false })).to.deep.include({ availability: 'unavailable', isConstrained: false })
    expect(contentFromBrowser({ onLine: true })).to.deep.include({ availability: 'available', transport: { wifi: false, cellular: false, ethernet: false, vpn: false, other: true } })
    expect(contentFromBrowser({ onLine: true, type: 'cellular', saveData: true })).to.deep.include({ availability: 'available', isExpensive: true, isConstrained: true })
    expect(contentFromBrowser({ onLine: true, type: 'none' })).to.include({ availability: 'unavailable' })
  })
})
