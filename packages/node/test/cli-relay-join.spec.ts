import { spawn } from 'node:child_process'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join as joinPath } from 'node:path'
import { createInterface } from 'node:readline'
import { relayServer } from '@holdfast/test-utils/infrastructure'
import { expect } from 'aegir/chai'
import { renderView } from '../src/cli/join.ts'
import { CLI, ENV, holdfast, requireBuiltBin } from './fixtures/bin.ts'
import type { Libp2p } from '@libp2p/interface'
import type { ChildProcess } from 'node:child_process'
import type { Server } from 'node:net'

// any well-formed peer ID: nothing answers for it
const NOBODY = '12D3KooWA62kpEbXB3Vfc4NRP2zs3E9E3Xk59tqcs3yq5YWbpAfb'
const PSK = Buffer.from(new Uint8Array(32).fill(7)).toString('base64')

/** a long-running command: its stdout line by line, waited for by content, never by time */
class Running {
  readonly child: ChildProcess
  readonly lines: string[] = []
  private stderr = ''
  private readonly waiters = new Set<() => void>()
  readonly exited: Promise<{ code: number | null, stderr: string }>

  constructor (args: string[]) {
    this.child = spawn(process.execPath, [CLI, ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stderr?.on('data', (chunk: Buffer) => { this.stderr += chunk.toString() })
    createInterface({ input: this.child.stdout! }).on('line', line => {
      this.lines.push(line)
      this.waiters.forEach(wake => { wake() })
    })
    this.exited = new Promise(resolve => {
      this.child.once('exit', code => {
        this.waiters.forEach(wake => { wake() })
        resolve({ code, stderr: this.stderr })
      })
    })
  }

  /** the first line (already printed or to come) that matches; rejects if the process ends first */
  async line (match: (line: string) => boolean): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.lines.find(match)
        if (found != null) {
          this.waiters.delete(check)
          resolve(found)
        } else if (this.child.exitCode != null || this.child.signalCode != null) {
          this.waiters.delete(check)
          reject(new Error(`exited (${this.child.exitCode ?? this.child.signalCode}) before the line; stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`))
        }
      }
      this.waiters.add(check)
      check()
    })
  }

  /** `--json` output: every line is a JSON object */
  async event (match: (event: any) => boolean): Promise<any> {
    return JSON.parse(await this.line(line => match(JSON.parse(line))))
  }

  async interrupt (): Promise<{ code: number | null, stderr: string }> {
    this.child.kill('SIGINT')
    return this.exited
  }
}

async function listening (server: Server, port = 0): Promise<number> {
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  return (server.address() as { port: number }).port
}

/** exactly one line on stderr matching `pattern`, and no stack trace */
function expectOneLine (stderr: string, pattern: RegExp): void {
  expect(stderr.endsWith('\n')).to.be.true()
  expect(stderr.trimEnd().split('\n')).to.have.length(1, stderr)
  expect(stderr.trimEnd()).to.match(pattern)
  expect(stderr).to.not.include('    at ')
}

describe('holdfast relay / join', () => {
  let dir: string
  let pskFile: string
  let running: Running[] = []
  let servers: Server[] = []
  let nodes: Libp2p[] = []

  const start = (...args: string[]): Running => {
    const proc = new Running(args)
    running.push(proc)
    return proc
  }

  before(async function () {
    requireBuiltBin()
    dir = await mkdtemp(joinPath(tmpdir(), 'holdfast-cli-'))
    pskFile = joinPath(dir, 'realm.psk')
    await writeFile(pskFile, `${PSK}\n`)
  })

  afterEach(async () => {
    // a failed test must not leave nodes behind
    for (const proc of running) {
      proc.child.kill('SIGKILL')
    }
    await Promise.all(running.map(async proc => proc.exited))
    running = []
    await Promise.all(servers.map(async server => new Promise(resolve => server.close(resolve))))
    servers = []
    await Promise.all(nodes.map(async node => node.stop()))
    nodes = []
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('relay prints its addresses; two joins through it (TCP and WebSockets) see each other; Ctrl-C ends all with exit 0', async function () {
    this.timeout(20_000)
    const relay = start('relay', '--psk-file', pskFile, '--listen', '/ip4/127.0.0.1/tcp/0', '--listen', '/ip4/127.0.0.1/tcp/0/ws')
    const tcpAddr = await relay.line(line => line.startsWith('/') && !line.includes('/ws/'))
    const wsAddr = await relay.line(line => line.includes('/ws/'))
    const relayId = tcpAddr.split('/p2p/')[1]
    expect(relayId).to.be.a('string').with.length.above(40)
    expect(wsAddr).to.match(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/ws/p2p/${relayId}$`))

    const a = start('join', '--json', '--preset', 'test', '--psk-file', pskFile, '--relay', tcpAddr)
    const b = start('join', '--json', '--preset', 'test', '--psk-file', pskFile, '--relay', wsAddr)
    const [joinedA, joinedB] = await Promise.all([a.event(() => true), b.event(() => true)])
    expect(joinedA).to.include({ type: 'joined' }).and.have.property('relays').that.deep.equals([tcpAddr])
    expect(joinedB).to.include({ type: 'joined' }).and.have.property('relays').that.deep.equals([wsAddr])
    expect(joinedA.plainRelays, 'the holdfast relay is a member of the realm').to.deep.equal([])
    expect(joinedA.realm).to.equal(joinedB.realm)

    // each learns of the other through the relay only
    const [seenByA, seenByB] = await Promise.all([
      a.event(e => e.type === 'member:joined' && e.peer === joinedB.peerId),
      b.event(e => e.type === 'member:joined' && e.peer === joinedA.peerId)
    ])
    expect(seenByA.ts).to.be.a('number')
    expect(seenByB.ts).to.be.a('number')
    await relay.line(line => line === `member:joined peer=${String(joinedA.peerId)}`)
    await relay.line(line => line === `member:joined peer=${String(joinedB.peerId)}`)

    // a leaves on Ctrl-C: b drops it at once, without waiting for its announcements to expire
    expect(await a.interrupt()).to.deep.equal({ code: 0, stderr: '' })
    expect(await b.event(e => e.type === 'member:left' && e.peer === joinedA.peerId)).to.include({ reason: 'left' })
    expect(await b.interrupt()).to.deep.equal({ code: 0, stderr: '' })
    expect(await relay.interrupt()).to.deep.equal({ code: 0, stderr: '' })
  })

  it('join --relay <a plain relay that also serves a DHT> (no realm, no PSK): the join says the relay is plain, and two joins meet through it', async function () {
    this.timeout(30_000)
    // what many public nodes are: a circuit relay v2 and a DHT server, plain js-libp2p, no realm
    const plain = await relayServer({ dht: true })
    nodes.push(plain)
    const relayAddr = plain.getMultiaddrs()[0].toString()
    const a = start('join', '--json', '--preset', 'test', '--psk-file', pskFile, '--relay', relayAddr)
    const b = start('join', '--json', '--preset', 'test', '--psk-file', pskFile, '--relay', relayAddr)
    const [joinedA, joinedB] = await Promise.all([a.event(e => e.type === 'joined'), b.event(e => e.type === 'joined')])
    expect(joinedA).to.have.property('relays').that.deep.equals([relayAddr])
    expect(joinedA).to.have.property('plainRelays').that.deep.equals([relayAddr])
    // they rendezvous on the relay's DHT, then reach each other through its circuits
    await Promise.all([
      a.event(e => e.type === 'member:joined' && e.peer === joinedB.peerId),
      b.event(e => e.type === 'member:joined' && e.peer === joinedA.peerId)
    ])
    expect(await a.interrupt()).to.deep.equal({ code: 0, stderr: '' })
    expect(await b.interrupt()).to.deep.equal({ code: 0, stderr: '' })
  })

  it('relay --key-file keeps its peer ID across runs; the key file is created with mode 0600', async function () {
    this.timeout(15_000)
    const keyFile = joinPath(dir, 'relay.key')
    const run = async (): Promise<any> => {
      const relay = start('relay', '--json', '--psk-file', pskFile, '--key-file', keyFile, '--listen', '/ip4/127.0.0.1/tcp/0')
      const listeningEvent = await relay.event(e => e.type === 'listening')
      expect(await relay.interrupt()).to.deep.equal({ code: 0, stderr: '' })
      return listeningEvent
    }
    const first = await run()
    expect((await stat(keyFile)).mode & 0o777).to.equal(0o600)
    const second = await run()
    expect(second.peerId).to.equal(first.peerId)
    expect(second.addrs).to.have.length(1)
    expect(second.addrs[0]).to.match(new RegExp(`/p2p/${String(first.peerId)}$`))
  })

  it('join with a missing PSK file: one line, exit 1', async () => {
    const result = await holdfast('join', '--psk-file', joinPath(dir, 'nope.psk'), '--relay', `/ip4/127.0.0.1/tcp/4001/p2p/${NOBODY}`)
    expect(result.code).to.equal(1)
    expectOneLine(result.stderr, /^holdfast: cannot read PSK file .*nope\.psk: no such file or directory$/)
  })

  it('join with a bad PSK file (too short, or neither base64 nor hex): one line naming the rule, never the key, exit 1', async () => {
    const short = joinPath(dir, 'short.psk')
    const junk = joinPath(dir, 'junk.psk')
    await writeFile(short, 'c2VjcmV0LWtleQ==\n')
    await writeFile(junk, 'secret key?!\n')
    const relayArgs = ['--relay', `/ip4/127.0.0.1/tcp/4001/p2p/${NOBODY}`]
    const [tooShort, notEncoded] = await Promise.all([
      holdfast('join', '--psk-file', short, ...relayArgs),
      holdfast('join', '--psk-file', junk, ...relayArgs)
    ])
    expect(tooShort.code).to.equal(1)
    expectOneLine(tooShort.stderr, /^holdfast: bad PSK file .*short\.psk: psk must be at least 32 bytes$/)
    expect(tooShort.stderr).to.not.include('c2VjcmV0')
    expect(notEncoded.code).to.equal(1)
    expectOneLine(notEncoded.stderr, /^holdfast: bad PSK file .*junk\.psk: psk must be hex or base64$/)
    expect(notEncoded.stderr).to.not.include('secret')
  })

  it('join with an unreachable relay (closed port): cannot reach relay, exit 1', async () => {
    const server = createServer()
    const port = await listening(server)
    await new Promise(resolve => server.close(resolve))
    const relay = `/ip4/127.0.0.1/tcp/${port}/p2p/${NOBODY}`
    const result = await holdfast('join', '--psk-file', pskFile, '--relay', relay, '--timeout', '5000')
    expect(result.code).to.equal(1)
    expectOneLine(result.stderr, new RegExp(`^holdfast: cannot reach relay ${relay}: .*ECONNREFUSED`))
  })

  it('join with a relay that accepts but never answers: cannot reach relay within --timeout, exit 1', async () => {
    // reads and drops whatever comes, answers nothing (and so sees the client hang up)
    const server = createServer(socket => { socket.resume() })
    servers.push(server)
    const relay = `/ip4/127.0.0.1/tcp/${await listening(server)}/p2p/${NOBODY}`
    const result = await holdfast('join', '--psk-file', pskFile, '--relay', relay, '--timeout', '500')
    expect(result.code).to.equal(1)
    expectOneLine(result.stderr, new RegExp(`^holdfast: cannot reach relay ${relay}: no answer within 500 ms$`))
  })

  it('relay on a port in use: cannot listen, address in use, exit 1', async () => {
    const server = createServer()
    servers.push(server)
    const addr = `/ip4/127.0.0.1/tcp/${await listening(server)}`
    const result = await holdfast('relay', '--psk-file', pskFile, '--listen', addr, '--listen', '/ip4/127.0.0.1/tcp/0/ws')
    expect(result.code).to.equal(1)
    expect(result.stdout).to.equal('')
    expectOneLine(result.stderr, new RegExp(`^holdfast: cannot listen on ${addr}: address in use$`))
  })

  it('relay with a file that is not a private key as --key-file: one line, exit 1', async () => {
    const result = await holdfast('relay', '--psk-file', pskFile, '--key-file', pskFile, '--listen', '/ip4/127.0.0.1/tcp/0')
    expect(result.code).to.equal(1)
    expectOneLine(result.stderr, /^holdfast: bad key file .*realm\.psk: not a libp2p private key$/)
  })

  it('bad usage is one line and exit 2: unknown flag, malformed or peerless --relay, missing --psk-file', async () => {
    const [bogus, malformed, peerless, noPsk] = await Promise.all([
      holdfast('join', '--bogus'),
      holdfast('join', '--psk-file', pskFile, '--relay', 'relay.example.com:4001'),
      holdfast('join', '--psk-file', pskFile, '--relay', '/ip4/127.0.0.1/tcp/4001'),
      holdfast('relay', '--listen', '/ip4/127.0.0.1/tcp/0')
    ])
    for (const result of [bogus, malformed, peerless, noPsk]) {
      expect(result.code).to.equal(2)
      expect(result.stdout).to.equal('')
    }
    expectOneLine(bogus.stderr, /^holdfast: .*'--bogus'/)
    expectOneLine(malformed.stderr, /^holdfast: --relay: not a multiaddr: relay\.example\.com:4001 /)
    expectOneLine(peerless.stderr, /^holdfast: --relay: \/ip4\/127\.0\.0\.1\/tcp\/4001 has no \/p2p\/<peer id> /)
    expectOneLine(noPsk.stderr, /^holdfast: --psk-file is required /)
  })

  it('the live view table: one row per member, the relay marked, RTT and reconnector state shown', () => {
    const relay = '12D3KooWRELAYrelayRELAYrelayRELAYrelayRELAYrelay0001'
    const member = '12D3KooWMEMBERmemberMEMBERmemberMEMBERmemberMEMB0002'
    const lines = renderView({
      self: '12D3KooWSELFselfSELFselfSELFselfSELFselfSELFselfSELF03',
      realm: 'd90cf08b408bddcd10db8e8d4c7edda9',
      relays: 2,
      plainRelays: 1,
      members: [
        { peer: relay, relay: true, path: 'direct/tcp', mode: 'direct-primary', rttMs: 0.42, reconnector: 'connected' },
        { peer: member, relay: false }
      ],
      lastAction: { action: 'probe', success: true, durationMs: 12.3, agoMs: 3_000 },
      lastEvent: { type: 'member:joined', peer: member, agoMs: 200 }
    })
    expect(lines[0]).to.equal('holdfast join: 12D3…lfSELF03 in realm d90cf08b…, 2 relay(s) reached: 1 of the realm, 1 plain (Ctrl-C to leave)')
    expect(lines[1]).to.equal('network: last action probe ok in 12 ms, 3 s ago')
    const table = lines.slice(3, 6)
    expect(table[0].split(/\s{2,}/)).to.deep.equal(['member', 'path', 'mode', 'rtt', 'reconnector'])
    expect(table[1].split(/\s{2,}/)).to.deep.equal(['12D3…elay0001 (relay)', 'direct/tcp', 'direct-primary', '0.4 ms', 'connected'])
    expect(table[2].split(/\s{2,}/)).to.deep.equal(['12D3…MEMB0002', 'not connected', '-', '-', '-'])
    // columns line up
    expect(table[1].indexOf('direct/tcp')).to.equal(table[0].indexOf('path'))
    expect(lines.at(-1)).to.equal('last event: member:joined 12D3…MEMB0002, just now')

    const empty = renderView({ self: relay, realm: 'd90cf08b408bddcd10db8e8d4c7edda9', relays: 1, plainRelays: 0, members: [] })
    expect(empty).to.include('(no members yet)')
    expect(empty[1]).to.equal('network: last action none yet')
  })
})
