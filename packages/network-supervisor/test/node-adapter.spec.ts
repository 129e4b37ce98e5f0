import { createFakeClock, createNode, expectNoLeaks, stopAll } from '@holdfast/test-utils'
import { defaultLogger } from '@libp2p/logger'
import { expect } from 'aegir/chai'
import { nodeAdapter } from '../src/adapters/node.ts'
import { networkSupervisor } from '../src/index.ts'
import { RecordingProcessor } from './helpers.ts'
import type { NetworkSupervisor } from '../src/index.ts'
import type { InterfaceAddress } from '../src/policy.ts'
import type { NetworkEvent, NetworkSnapshot } from '@holdfast/interface'
import type { FakeClock } from '@holdfast/test-utils'
import type { Libp2p } from '@libp2p/interface'

type Table = Record<string, InterfaceAddress[]>

const v4 = (address: string, internal = false): InterfaceAddress => ({ address, family: 'IPv4', internal })
const LOOPBACK: Table = { lo: [v4('127.0.0.1', true)] }

/** The interface table the adapter reads, changed by the test between polls */
function fakeTable (initial: Table): { read(): Table, set(table: Table): void } {
  let table = initial
  return { read: () => table, set: (next) => { table = next } }
}

function recordingSink (): { events: NetworkEvent[], baselines: NetworkSnapshot[], sink: { event(e: NetworkEvent): void, baseline(s: NetworkSnapshot): void } } {
  const events: NetworkEvent[] = []
  const baselines: NetworkSnapshot[] = []
  return { events, baselines, sink: { event: (e) => { events.push(e) }, baseline: (s) => { baselines.push(s) } } }
}

const summary = (s: NetworkSnapshot): string => `${s.sequence} ${s.availability} ${Object.entries(s.transport).filter(([, on]) => on).map(([k]) => k).join('+')}${s.isExpensive ? ' expensive' : ''}`

describe('Node adapter (injected networkInterfaces, fake clock)', () => {
  let clock: FakeClock

  beforeEach(() => {
    clock = createFakeClock()
  })

  it('interfaces appearing, disappearing and changing type give the right snapshot sequence', async () => {
    const table = fakeTable({ ...LOOPBACK, eth0: [v4('192.168.1.10')] })
    const adapter = nodeAdapter({ networkInterfaces: table.read })
    const { events, baselines, sink } = recordingSink()
    adapter.start(sink, { clock, log: defaultLogger().forComponent('test') })
    expect(baselines.map(summary)).to.deep.equal(['1 available ethernet'])

    const steps: Array<[Table, string | undefined]> = [
      [{ ...LOOPBACK, eth0: [v4('192.168.1.10')] }, undefined], // nothing changed: no event
      [{ ...LOOPBACK, eth0: [v4('192.168.1.10')], wlan0: [v4('10.1.1.4')] }, '2 available wifi+ethernet'], // Wi-Fi appears
      [{ ...LOOPBACK, wlan0: [v4('10.1.1.4')] }, '3 available wifi'], // ethernet unplugged
      [{ ...LOOPBACK, wlan0: [v4('10.1.1.4')], utun2: [v4('100.64.0.9')] }, '4 available wifi+vpn'], // VPN up
      [{ ...LOOPBACK, wlan0: [v4('10.1.1.99')], utun2: [v4('100.64.0.9')] }, undefined], // new address, same path
      [{ ...LOOPBACK, rmnet0: [v4('100.70.1.2')] }, '5 available cellular expensive'], // Wi-Fi -> cellular
      [{ ...LOOPBACK, rmnet0: [{ address: 'fe80::1', family: 'IPv6', internal: false }] }, '6 unavailable '], // only link-local left
      [{ ...LOOPBACK, docker0: [v4('172.17.0.1')] }, undefined], // a bridge is not a network
      [{ ...LOOPBACK, wlp2s0: [v4('192.168.0.7')] }, '7 available wifi'] // back on Wi-Fi
    ]
    for (const [next, expected] of steps) {
      const before = events.length
      table.set(next)
      await clock.tickAsync(1_999)
      expect(events.length).to.equal(before) // nothing before the poll
      await clock.tickAsync(1)
      const produced = events.slice(before).map(e => e.type === 'network-path-changed' ? summary(e.snapshot) : e.type)
      expect(produced).to.deep.equal(expected === undefined ? [] : [expected])
    }
    adapter.stop()
    expect(adapter.internalSizes?.()).to.deep.equal({ timers: 0, listeners: 0 })
    expect(clock.countTimers()).to.equal(0)
  })

  it('a source that throws skips that reading and polling goes on', async () => {
    let fail = true
    const adapter = nodeAdapter({
      pollInterval: 500,
      networkInterfaces: () => {
        if (fail) {
          throw new Error('EPERM')
        }
        return { wlan0: [v4('10.0.0.2')] }
      }
    })
    const { events, baselines, sink } = recordingSink()
    adapter.start(sink, { clock, log: defaultLogger().forComponent('test') })
    expect(baselines).to.have.length(0)
    await clock.tickAsync(500)
    fail = false
    await clock.tickAsync(500)
    expect(events.map(e => e.type === 'network-path-changed' ? summary(e.snapshot) : e.type)).to.deep.equal(['1 available wifi'])
    adapter.stop()
  })

  it('rejects a bad poll interval with InvalidConfigError naming it, 2^31 ms (which a timer would fire at once) included', () => {
    for (const pollInterval of [0, -1, Number.NaN, 2 ** 31]) {
      expect(() => nodeAdapter({ pollInterval }), String(pollInterval)).to.throw().with.property('option', 'pollInterval')
      expect(() => nodeAdapter({ pollInterval })).to.throw().with.property('name', 'InvalidConfigError')
    }
  })

  describe('driving the supervisor', () => {
    let node: Libp2p<{ network: NetworkSupervisor }> | undefined

    afterEach(async () => {
      await stopAll([node])
      node = undefined
    })

    it('baseline, then Wi-Fi lost -> offline, then cellular -> restore; stop leaves nothing', async () => {
      const table = fakeTable({ ...LOOPBACK, wlan0: [v4('10.1.1.4')] })
      const processor = new RecordingProcessor()
      node = await createNode({ services: { network: networkSupervisor({ clock, processor, adapters: [nodeAdapter({ networkInterfaces: table.read })] }) } }) as unknown as Libp2p<{ network: NetworkSupervisor }>
      const network = node.services.network
      const actions: string[] = []
      network.addEventListener('network:action', ({ detail }) => { actions.push(detail.action) })
      expect(network.snapshot()).to.deep.include({ sequence: 1, availability: 'available' })

      table.set(LOOPBACK)
      await clock.tickAsync(2_000 + 400)
      table.set({ ...LOOPBACK, wwan0: [v4('100.70.1.2')] })
      await clock.tickAsync(2_000 + 400)
      expect(actions).to.deep.equal(['offline', 'restore'])
      expect(processor.calls.map(c => c.method)).to.deep.equal(['offline', 'restore'])
      expect(network.snapshot()).to.deep.include({ sequence: 3, availability: 'available', isExpensive: true })

      await node.stop()
      expectNoLeaks(network)
      expect(clock.countTimers()).to.equal(0)
    })

    it('an unavailable baseline runs offline at start', async () => {
      const processor = new RecordingProcessor()
      node = await createNode({ services: { network: networkSupervisor({ clock, processor, adapters: [nodeAdapter({ networkInterfaces: () => LOOPBACK })] }) } }) as unknown as Libp2p<{ network: NetworkSupervisor }>
      await clock.tickAsync(400)
      expect(processor.calls.map(c => c.method)).to.deep.equal(['offline'])
    })
  })
})
