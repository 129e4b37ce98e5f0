/**
 * How `relay` and `join` print what happens: one record per event, as a JSON line (`--json`)
 * or as one plain `type key=value ...` line. Peer IDs and multiaddrs become strings.
 */
import type { CommandIo } from './command.ts'
import type { AnyHoldfastEvent } from '@holdfast/interface'

export interface OutputRecord {
  type: string
  /** Unix time, ms */
  ts: number
  [field: string]: unknown
}

/** PeerIds and Multiaddrs have `toJSON()` (their string form), so one JSON round trip flattens any event detail */
export function record (type: string, detail: object = {}, ts: number = Date.now()): OutputRecord {
  return { type, ts, ...JSON.parse(JSON.stringify(detail)) }
}

/** `3.2 ms` below 10 ms, `42 ms` above */
export function formatMs (value: number): string {
  return `${value.toFixed(value < 10 ? 1 : 0)} ms`
}

/**
 * Rows (the first is the header) as aligned columns, two spaces apart; `right` lists the
 * columns aligned right, `rule` adds a dashed line under the header.
 */
export function formatTable (rows: string[][], opts: { right?: number[], rule?: boolean } = {}): string[] {
  const widths = rows[0].map((_, column) => Math.max(...rows.map(row => row[column].length)))
  const line = (row: string[]): string => row
    .map((cell, column) => opts.right?.includes(column) === true ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))
    .join('  ')
    .trimEnd()
  const lines = rows.map(line)
  if (opts.rule === true) {
    lines.splice(1, 0, line(widths.map(width => '-'.repeat(width))))
  }
  return lines
}

function plainValue (value: unknown): string {
  if (Array.isArray(value)) {
    return value.join(',')
  }
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)
}

/** `member:joined peer=12D3KooW...`: the type, then the fields (not `ts`) as key=value */
function plainLine (rec: OutputRecord): string {
  const { type, ts, ...fields } = rec
  const parts = Object.entries(fields).map(([key, value]) => `${key}=${plainValue(value)}`)
  return [type, ...parts].join(' ')
}

/**
 * An error as a short reason: its first line, or its parts' reasons for an aggregate (libp2p's
 * "All multiaddr dials failed"); a WebSocket failure is an `ErrorEvent` with neither message nor name.
 */
export function reason (err: any): string {
  if (Array.isArray(err?.errors) && err.errors.length > 0) {
    return [...new Set(err.errors.map(reason))].join(', ')
  }
  const message = String(err?.message ?? '').split('\n')[0].trim()
  if (message !== '') {
    return message
  }
  return typeof err?.name === 'string' && err.name !== '' ? err.name : 'connection failed'
}

export interface EventPrinter {
  /** a broadcaster `'*'` subscriber: prints the events of the chosen types */
  onEvent(event: AnyHoldfastEvent): void
  /** prints one of the command's own records (`listening`, `joined`, ...) */
  print(rec: OutputRecord): void
  /** prints what was held back, and from now on prints at once */
  release(): void
}

/**
 * Holds events back until `release()`, so a command subscribes before its node starts (and
 * misses nothing) yet prints its own first line (`listening`, `joined`) first.
 */
export function eventPrinter (io: CommandIo, json: boolean, types: ReadonlySet<string>): EventPrinter {
  let held: OutputRecord[] | undefined = []
  const print = (rec: OutputRecord): void => { io.print(json ? JSON.stringify(rec) : plainLine(rec)) }
  return {
    onEvent (event) {
      if (!types.has(event.type)) {
        return
      }
      const rec = record(event.type, event.detail, Math.round(event.time))
      if (held != null) {
        held.push(rec)
      } else {
        print(rec)
      }
    },
    print,
    release () {
      held?.forEach(print)
      held = undefined
    }
  }
}
