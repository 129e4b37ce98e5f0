import { existsSync, readdirSync, readlinkSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect } from 'aegir/chai'
import { linkDown, linkUp, netnsAvailable, spawnInNetns } from '../src/netns.ts'
import type { NetnsOptions, NetnsProcess } from '../src/netns.ts'

/** run compiled: the child is a plain `node`, without the test runner's type stripping */
const FIXTURE = fileURLToPath(new URL('../dist/test/fixtures/netns-echo.js', import.meta.url))

/** whether a process with this pid exists */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    if (err.code === 'ESRCH') { return false }
    throw err
  }
}

/** the pids of the processes in the network namespace `ns` (a `net:[inode]` link) */
function pidsIn (ns: string): number[] {
  return readdirSync('/proc').filter(name => /^\d+$/.test(name)).filter(pid => {
    try {
      return readlinkSync(`/proc/${pid}/ns/net`) === ns
    } catch {
      return false // the process ended while we looked
    }
  }).map(Number)
}

describe('spawnInNetns', () => {
  let procs: NetnsProcess[] = []
  const spawn = (opts: Partial<NetnsOptions> = {}): NetnsProcess => {
    const proc = spawnInNetns({ script: FIXTURE, ...opts })
    procs.push(proc)
    return proc
  }

  before(async () => {
    // we are root on these machines, in CI and out of it: not being able to is a failure, not a skip
    const available = await netnsAvailable()
    if (!available.ok) {
      throw new Error(`network namespaces must work here${process.env.CI != null ? ' (CI)' : ''}: ${available.why}`)
    }
    if (!existsSync(FIXTURE)) {
      throw new Error(`${FIXTURE} is missing: run npm run build first`)
    }
  })

  afterEach(async () => {
    await Promise.all(procs.map(async p => p.stop()))
    procs = []
  })

  it('runs the script with both veth ends on documentation addresses, no route out, and the namespace dies with it', async () => {
    const proc = spawn()
    const report = await proc.next(m => m.type === 'report')
    expect(report).to.deep.include({ addresses: ['198.51.100.1', '198.51.100.2'], defaultRoute: false, env: '198.51.100.1,198.51.100.2' })
    expect(proc.addresses).to.deep.equal(['198.51.100.1', '198.51.100.2'])
    const ns = readlinkSync(`/proc/${proc.pid}/ns/net`)
    expect(ns).to.not.equal(readlinkSync('/proc/self/ns/net'))
    expect(pidsIn(ns)).to.deep.equal([proc.pid])

    proc.send({ hello: 'netns' })
    expect(await proc.next(m => m.type === 'echo')).to.have.deep.property('echo', { hello: 'netns' })

    expect(await proc.stop()).to.deep.equal({ code: 0, signal: null })
    expect(alive(proc.pid)).to.be.false()
    expect(pidsIn(ns)).to.deep.equal([])
  })

  it('rejects next() with a NetnsProcessError carrying stderr when the child exits early', async () => {
    const proc = spawn({ args: ['fail'] })
    const err = await proc.next().catch(err => err)
    expect(err).to.have.property('name', 'NetnsProcessError')
    expect(err.message).to.include('code 3').and.include('netns-echo failing on purpose')
    expect(await proc.stop()).to.deep.equal({ code: 3, signal: null })
  })

  it('stop() kills a child that does not exit when stdin closes', async () => {
    const proc = spawn({ args: ['hang'] })
    await proc.next(m => m.type === 'report')
    expect(await proc.stop(200)).to.deep.equal({ code: null, signal: 'SIGKILL' })
    expect(alive(proc.pid)).to.be.false()
  })

  it('rejects next() after timeoutMs and keeps the lines nobody took', async () => {
    const proc = spawn({ timeoutMs: 200 })
    const err = await proc.next(m => m.type === 'never').catch(err => err)
    expect(err).to.have.property('name', 'NetnsProcessError')
    expect(err.message).to.include('within 200 ms').and.include('starting, this line is not JSON')
    expect(await proc.next()).to.have.property('type', 'report')
  })

  it('linkDown and linkUp set a link inside the namespace', async () => {
    const proc = spawn()
    await proc.next(m => m.type === 'report')
    await linkDown(proc, 'hf0')
    proc.send('down')
    const down = await proc.next(m => m.echo === 'down')
    expect(down.up).to.include({ hf0: false, hf1: true })
    expect(down.addresses).to.not.include('198.51.100.1')
    await linkUp(proc, 'hf0')
    proc.send('up')
    expect((await proc.next(m => m.echo === 'up')).up).to.include({ hf0: true, hf1: true })
  })

  it('refuses addresses outside the lab ranges and unusable timeouts', () => {
    for (const addresses of [['10.0.0.1/24', '10.0.0.2/24'], ['198.51.100.1/16', '198.51.100.2/16'], ['198.51.100.1/24'], ['203.0.113.1', '203.0.113.2']]) {
      expect(() => spawn({ addresses })).to.throw(TypeError, /addresses must be/)
    }
    expect(() => spawn({ timeoutMs: 2 ** 31 })).to.throw(TypeError, /timeoutMs must be/)
  })

  it('takes addresses in 203.0.113.0/24', async () => {
    const proc = spawn({ addresses: ['203.0.113.7/24', '203.0.113.8/24'] })
    expect(await proc.next(m => m.type === 'report')).to.have.deep.property('addresses', ['203.0.113.7', '203.0.113.8'])
  })
})
