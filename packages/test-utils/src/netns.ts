/**
 * Run a Node script in a network namespace of its own, made by `unshare -n`, with a veth pair
 * `hf0`/`hf1` whose two ends are both inside it and no route out. WebRTC needs it: libjuice
 * gathers no loopback candidates. The namespace dies with the process, so a lab cannot outlive
 * its test; the child is also killed when the test runner exits.
 *
 * The child speaks JSON lines: it prints them on stdout (read with `next()`) and reads them on
 * stdin (written with `send()`). Non-JSON stdout lines are kept for error messages only.
 */
import { execFile, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

/** the two ends of the veth pair, in documentation ranges only (RFC 5737), never routed out */
export const NETNS_DEFAULT_ADDRESSES = ['198.51.100.1/24', '198.51.100.2/24']
/** how long `next()` waits for a matching line: a child's start and its first answer take well under this */
export const NETNS_NEXT_TIMEOUT_MS = 10_000
/** how long `stop()` waits after closing stdin before SIGKILL */
export const NETNS_STOP_GRACE_MS = 2_000
/** the bound on each `ip`/`unshare`/`nsenter` command: each takes milliseconds */
const COMMAND_TIMEOUT_MS = 5_000
/** how much of the child's stderr (and non-JSON stdout) an error message carries */
const TAIL_CHARS = 2_048
/** the lab's only "public" ranges; a prefix of /24 or longer keeps every route inside them */
const LAB_ADDRESS = /^(198\.51\.100|203\.0\.113)\.\d{1,3}\/(2[4-9]|3[0-2])$/

/** run inside the new namespace by `sh -c`: $1 and $2 are the addresses, the rest is the command */
const SETUP = [
  'set -e',
  'ip link set lo up',
  'ip link add hf0 type veth peer name hf1',
  'ip addr add "$1" dev hf0',
  'ip addr add "$2" dev hf1',
  'ip link set hf0 up',
  'ip link set hf1 up',
  'shift 2',
  'exec "$@"'
].join('\n')

export type NetnsAvailability = { ok: true } | { ok: false, why: string }

export interface NetnsOptions {
  /** the Node script to run (an ES module or CommonJS file, already compiled) */
  script: string
  args?: string[]
  /** added to this process's environment */
  env?: Record<string, string>
  /**
   * CIDRs for hf0 and hf1, in 198.51.100.0/24 or 203.0.113.0/24
   *
   * @default NETNS_DEFAULT_ADDRESSES
   */
  addresses?: string[]
  /**
   * the bound on each `next()` wait
   *
   * @default NETNS_NEXT_TIMEOUT_MS
   */
  timeoutMs?: number
}

export interface NetnsExit { code: number | null, signal: NodeJS.Signals | null }

export interface NetnsProcess {
  /** the node process itself (sh `exec`s it), so `nsenter -t pid -n` enters its namespace */
  readonly pid: number
  /** the plain IPs of hf0 and hf1, also given to the child as `HOLDFAST_NETNS_ADDRS` */
  readonly addresses: string[]
  /** the next JSON line from stdout matching `filter`; lines nobody took yet are kept for later calls */
  next(filter?: (msg: any) => boolean): Promise<any>
  /** writes `obj` as one JSON line on the child's stdin */
  send(obj: unknown): void
  /** closes stdin, waits up to `graceMs` for the exit, then SIGKILLs */
  stop(graceMs?: number): Promise<NetnsExit>
}

/** the child exited, or a `next()` wait passed its bound; the message ends with the child's stderr */
export class NetnsProcessError extends Error {
  static name = 'NetnsProcessError'

  constructor (message = 'netns process failed') {
    super(message)
    this.name = 'NetnsProcessError'
  }
}

/** whether `unshare -n` and `ip` work here; `why` says what failed */
export async function netnsAvailable (): Promise<NetnsAvailability> {
  return new Promise(resolve => {
    execFile('unshare', ['-n', 'ip', 'link', 'set', 'lo', 'up'], { timeout: COMMAND_TIMEOUT_MS }, (err, _stdout, stderr) => {
      resolve(err == null ? { ok: true } : { ok: false, why: `unshare -n ip link set lo up failed: ${err.message.trim()} ${stderr.trim()}`.trim() })
    })
  })
}

/** starts `node script ...args` in a fresh namespace with hf0/hf1 up and no route out */
export function spawnInNetns (opts: NetnsOptions): NetnsProcess {
  const cidrs = opts.addresses ?? NETNS_DEFAULT_ADDRESSES
  if (cidrs.length !== 2 || !cidrs.every(a => LAB_ADDRESS.test(a))) {
    throw new TypeError(`addresses must be two CIDRs in 198.51.100.0/24 or 203.0.113.0/24 with a prefix of /24 or longer, got ${JSON.stringify(cidrs)}`)
  }
  const timeoutMs = opts.timeoutMs ?? NETNS_NEXT_TIMEOUT_MS
  // Node clamps 2^31 ms or more to 1 ms
  if (!(timeoutMs > 0 && timeoutMs < 2 ** 31)) { throw new TypeError(`timeoutMs must be above 0 and below 2^31, got ${timeoutMs}`) }
  const addresses = cidrs.map(a => a.split('/')[0])
  const child = spawn('unshare', ['-n', 'sh', '-c', SETUP, 'sh', ...cidrs, process.execPath, opts.script, ...(opts.args ?? [])], {
    env: { ...process.env, ...opts.env, HOLDFAST_NETNS_ADDRS: addresses.join(',') },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  // the runner exiting (a failed test, a forgotten stop) must not leave the lab behind
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)

  let stderr = ''
  let noise = ''
  let exit: NetnsExit | undefined
  const unread: unknown[] = []
  const waiters = new Set<{ filter(msg: unknown): boolean, resolve(msg: unknown): void, fail(why: string): void }>()
  const tail = (s: string): string => s.slice(-TAIL_CHARS)
  const failure = (why: string): NetnsProcessError =>
    new NetnsProcessError(`${why} (script ${opts.script}); stderr: ${tail(stderr) || '(empty)'}${noise === '' ? '' : `; non-JSON stdout: ${tail(noise)}`}`)

  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr = tail(stderr + chunk) })
  // a write after the child is gone fails with EPIPE; the exit already rejects what waits on it
  child.stdin.on('error', () => {})
  createInterface({ input: child.stdout }).on('line', line => {
    let msg: unknown
    try {
      msg = JSON.parse(line)
    } catch {
      noise = tail(`${noise}${line}\n`)
      return
    }
    const waiter = [...waiters].find(w => w.filter(msg))
    if (waiter == null) { unread.push(msg) } else { waiter.resolve(msg) }
  })
  const exited = new Promise<NetnsExit>(resolve => {
    const done = (e: NetnsExit, why: string): void => {
      if (exit != null) { return }
      exit = e
      process.removeListener('exit', killOnExit)
      for (const w of waiters) { w.fail(why) }
      resolve(e)
    }
    // 'close' comes after stdout ended, so every line the child printed was seen first
    child.on('close', (code, signal) => { done({ code, signal }, `child exited with code ${code} signal ${signal}`) })
    child.on('error', err => { done({ code: null, signal: null }, `unshare failed: ${err.message}`) })
  })

  if (child.pid == null) { throw failure('could not start unshare') }

  return {
    pid: child.pid,
    addresses,
    async next (filter = () => true) {
      const i = unread.findIndex(filter)
      if (i !== -1) { return unread.splice(i, 1)[0] }
      if (exit != null) { throw failure(`child already exited with code ${exit.code} signal ${exit.signal}`) }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => { waiter.fail(`no matching JSON line within ${timeoutMs} ms`) }, timeoutMs)
        const settle = (): void => { clearTimeout(timer); waiters.delete(waiter) }
        const waiter = {
          filter,
          resolve: (msg: unknown) => { settle(); resolve(msg) },
          fail: (why: string) => { settle(); reject(failure(why)) }
        }
        waiters.add(waiter)
      })
    },
    send (obj) {
      child.stdin.write(`${JSON.stringify(obj)}\n`)
    },
    async stop (graceMs = NETNS_STOP_GRACE_MS) {
      child.stdin.end()
      const timer = setTimeout(() => { child.kill('SIGKILL') }, graceMs)
      return exited.finally(() => { clearTimeout(timer) })
    }
  }
}

/** `ip link set <iface> down` inside the child's namespace (downing hf0 also takes hf1's carrier) */
export async function linkDown (proc: NetnsProcess, iface: string): Promise<void> {
  await ipLinkSet(proc, iface, 'down')
}

/** `ip link set <iface> up` inside the child's namespace */
export async function linkUp (proc: NetnsProcess, iface: string): Promise<void> {
  await ipLinkSet(proc, iface, 'up')
}

async function ipLinkSet (proc: NetnsProcess, iface: string, state: 'up' | 'down'): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('nsenter', ['-t', String(proc.pid), '-n', 'ip', 'link', 'set', iface, state], { timeout: COMMAND_TIMEOUT_MS }, (err, _stdout, stderr) => {
      if (err == null) { resolve(); return }
      reject(new NetnsProcessError(`ip link set ${iface} ${state} in pid ${proc.pid} failed: ${err.message.trim()} ${stderr.trim()}`))
    })
  })
}
