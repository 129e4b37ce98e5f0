/**
 * `holdfast join`: joins a realm through its relays and shows what the holdfast services do,
 * as a live table on a terminal, one line per event otherwise, or JSON lines with `--json`.
 * Every holdfast event goes through the cleanup broadcaster, so one `'*'` subscription feeds
 * all three.
 */
import { once } from 'node:events'
import { raceSignal } from 'race-signal'
import { createHoldfastNode } from '../node.ts'
import { CliError } from './command.ts'
import { msOption, presetOption, readPskFile, RELAY_TIMEOUT_MS, relayAddrs, requiredString } from './options.ts'
import { eventPrinter, formatMs as ms, formatTable, reason, record } from './output.ts'
import type { Command, CommandIo } from './command.ts'
import type { HoldfastRealmNode } from '../node.ts'
import type { AnyHoldfastEvent, RecoveryAction } from '@holdfast/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** what a member of the realm wants to see: membership, paths, the reconnector and the network supervisor */
const JOIN_EVENTS = new Set([
  'member:joined', 'member:updated', 'member:left',
  'path:changed', 'path:upgraded', 'path:fallback', 'relay:reservation-lost', 'relay:reservation-restored',
  'peer:held', 'peer:reconnecting', 'peer:recovered', 'peer:removed', 'peer:online', 'peer:offline',
  'network:action', 'trim:completed'
])

/** ms between redraws of the live table when nothing happens: RTTs move on their own */
const REDRAW_INTERVAL_MS = 1_000

export interface ViewMember {
  peer: string
  /** one of the relays given with --relay */
  relay: boolean
  /** the best path: `direct/tcp`, `relayed/p2p-circuit`, ... */
  path?: string
  mode?: string
  rttMs?: number
  /** `reconnector.state(peer)` */
  reconnector?: string
}

export interface ViewState {
  self: string
  realm: string
  relays: number
  /** of those, the plain relays (not realm members: the realm's infrastructure) */
  plainRelays: number
  members: ViewMember[]
  lastAction?: { action: RecoveryAction, success: boolean, durationMs: number, agoMs: number }
  lastEvent?: { type: string, peer?: string, agoMs: number }
}

function short (peer: string): string {
  return peer.length > 16 ? `${peer.slice(0, 4)}…${peer.slice(-8)}` : peer
}

function ago (value: number): string {
  return value < 1_000 ? 'just now' : `${Math.round(value / 1_000)} s ago`
}

/** The live table, one string per line (pure: the command gathers the state) */
export function renderView (state: ViewState): string[] {
  const action = state.lastAction == null
    ? 'none yet'
    : `${state.lastAction.action} ${state.lastAction.success ? 'ok' : 'failed'} in ${ms(state.lastAction.durationMs)}, ${ago(state.lastAction.agoMs)}`
  const rows = [
    ['member', 'path', 'mode', 'rtt', 'reconnector'],
    ...state.members.map(m => [
      `${short(m.peer)}${m.relay ? ' (relay)' : ''}`,
      m.path ?? 'not connected',
      m.mode ?? '-',
      m.rttMs == null ? '-' : ms(m.rttMs),
      m.reconnector ?? '-'
    ])
  ]
  const table = formatTable(rows)
  return [
    `holdfast join: ${short(state.self)} in realm ${state.realm.slice(0, 8)}…, ${state.relays} relay(s) reached: ${state.relays - state.plainRelays} of the realm, ${state.plainRelays} plain (Ctrl-C to leave)`,
    `network: last action ${action}`,
    '',
    ...table,
    ...(state.members.length === 0 ? ['(no members yet)'] : []),
    '',
    `last event: ${state.lastEvent == null ? 'none yet' : `${state.lastEvent.type}${state.lastEvent.peer == null ? '' : ` ${short(state.lastEvent.peer)}`}, ${ago(state.lastEvent.agoMs)}`}`
  ]
}

/** redraws the table in place: back up over the previous frame, clear to the end, print */
class LiveView {
  private readonly node: HoldfastRealmNode
  private readonly io: CommandIo
  private readonly relayIds: Set<string>
  private reached = 0
  private plain = 0
  private lines = 0
  private timer?: ReturnType<typeof setInterval>
  private lastAction?: { action: RecoveryAction, success: boolean, durationMs: number, at: number }
  private lastEvent?: { type: string, peer?: string, at: number }

  constructor (node: HoldfastRealmNode, relays: Multiaddr[], io: CommandIo) {
    this.node = node
    this.io = io
    this.relayIds = new Set(relays.map(relay => relay.getComponents().find(c => c.name === 'p2p')?.value ?? ''))
  }

  readonly onEvent = (event: AnyHoldfastEvent): void => {
    if (!JOIN_EVENTS.has(event.type)) {
      return
    }
    const now = Date.now()
    if (event.type === 'network:action') {
      this.lastAction = { ...event.detail, at: now }
    }
    const peer = (event.detail as { peer?: { toString(): string } }).peer
    this.lastEvent = { type: event.type, peer: peer?.toString(), at: now }
    if (this.timer != null) {
      this.draw()
    }
  }

  start (reached: number, plain: number): void {
    this.reached = reached
    this.plain = plain
    this.draw()
    this.timer = setInterval(() => { this.draw() }, REDRAW_INTERVAL_MS)
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  private draw (): void {
    const { paths, realm, reconnector } = this.node.services
    const now = Date.now()
    const members = realm.members()
      .map(({ peerId }): ViewMember => {
        const best = paths.best(peerId)
        return {
          peer: peerId.toString(),
          relay: this.relayIds.has(peerId.toString()),
          path: best == null ? undefined : `${best.kind}/${best.transport}`,
          mode: paths.mode(peerId),
          rttMs: best?.rttMs,
          reconnector: reconnector.state(peerId)
        }
      })
      .sort((a, b) => a.peer.localeCompare(b.peer))
    const frame = renderView({
      self: this.node.peerId.toString(),
      realm: realm.id,
      relays: this.reached,
      plainRelays: this.plain,
      members,
      lastAction: this.lastAction == null ? undefined : { ...this.lastAction, agoMs: now - this.lastAction.at },
      lastEvent: this.lastEvent == null ? undefined : { ...this.lastEvent, agoMs: now - this.lastEvent.at }
    })
    this.io.print(`${this.lines > 0 ? `\x1b[${this.lines}F\x1b[J` : ''}${frame.join('\n')}`)
    this.lines = frame.length
  }
}

/**
 * The node starts with `NO_FATAL`, so an unreachable relay does not fail it: dial each relay
 * and run the realm auth on it, all within `timeout` from now. A relay that answers but is not
 * a member is a plain relay (any circuit relay v2): it is kept, as the realm's infrastructure.
 * Dials need a started node, and libp2p's start waits for a reservation on every relay (under
 * its own timeouts: 5 s to dial, 5 s to reserve), so the start is inside the bound too.
 * Resolves with the relays reached (none when interrupted), throws when none was.
 */
async function reachRelays (node: HoldfastRealmNode, starting: Promise<void>, relays: Multiaddr[], timeout: number, signal: AbortSignal): Promise<{ reached: string[], plain: string[], unreachable: string[] }> {
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(timeout)])
  const results = await Promise.allSettled(relays.map(async (relay): Promise<boolean> => {
    let connection
    try {
      await raceSignal(starting, deadline)
      connection = await node.dial(relay, { signal: deadline })
    } catch (err) {
      throw new Error(`${relay.toString()}: ${deadline.aborted ? `no answer within ${timeout} ms` : reason(err)}`)
    }
    // true: a member of the realm; false: a plain relay
    return node.services.realm.authenticate(connection, { signal: deadline }).then(() => true, () => false)
  }))
  const reached = relays.filter((_, i) => results[i].status === 'fulfilled').map(String)
  const plain = relays.filter((_, i) => { const result = results[i]; return result.status === 'fulfilled' && !result.value }).map(String)
  const unreachable = results.flatMap(result => result.status === 'rejected' ? [String(result.reason.message)] : [])
  if (reached.length === 0 && !signal.aborted) {
    throw new CliError(relays.length === 1 ? `cannot reach relay ${unreachable[0]}` : `cannot reach any relay: ${unreachable.join('; ')}`)
  }
  return { reached, plain, unreachable }
}

export const join: Command = {
  usage: `holdfast join --psk-file F --relay <ma> [--relay <ma>]... [--preset P] [--timeout ms] [--json]
      join a realm until Ctrl-C, showing members, paths, reconnector states and network actions`,
  options: {
    'psk-file': { type: 'string' },
    relay: { type: 'string', multiple: true },
    preset: { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' }
  },
  async run (values, io) {
    const pskFile = requiredString(values, 'psk-file')
    const relays = relayAddrs(values)
    const preset = presetOption(values, 'desktop')
    const timeout = msOption(values, 'timeout', RELAY_TIMEOUT_MS)
    const psk = await readPskFile(pskFile)
    const json = values.json === true
    const live = io.isTTY && !json

    const node = await createHoldfastNode({ realm: { psk }, relays, preset, libp2p: { start: false } })
    const printer = eventPrinter(io, json, JOIN_EVENTS)
    const view = live ? new LiveView(node, relays, io) : undefined
    const unsubscribe = node.services.broadcaster.subscribe('*', view?.onEvent ?? printer.onEvent)
    let startSettled = false
    const starting = Promise.resolve(node.start()).finally(() => { startSettled = true })
    starting.catch(() => {}) // awaited by reachRelays, within --timeout
    try {
      const { reached, plain, unreachable } = await reachRelays(node, starting, relays, timeout, io.signal)
      if (io.signal.aborted) {
        return 0
      }
      if (view != null) {
        view.start(reached.length, plain.length)
      } else {
        printer.print(record('joined', { peerId: node.peerId, realm: node.services.realm.id, relays: reached, plainRelays: plain, ...(unreachable.length > 0 ? { unreachable } : {}) }))
        printer.release()
      }
      await once(io.signal, 'abort')
      // stop printing first: leaving drops every member on this side too
      unsubscribe()
      view?.stop()
      // a second relay that stalls may still hold libp2p's start (its own timeouts bound it)
      await starting.catch(() => {})
      // the members drop this node at once instead of waiting for its announcements to expire
      await node.services.realm.leave().catch(() => {})
    } finally {
      unsubscribe()
      view?.stop()
      // when the command failed, a start still waiting on a stalled relay is not waited for: the process exits next (cli.ts)
      if (startSettled) {
        await node.stop()
      }
    }
    return 0
  }
}
