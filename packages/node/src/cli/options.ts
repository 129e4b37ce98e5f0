/**
 * What `relay` and `join` read from their flags and files, checked before any socket opens:
 * bad flags are `UsageError`s (exit 2), unreadable or bad files `CliError`s (exit 1). Neither
 * message ever contains the PSK or the private key.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { deriveKeys } from '@holdfast/realm'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { PRESET_NAMES } from '../constants.ts'
import { CliError, UsageError } from './command.ts'
import type { OptionValues } from './command.ts'
import type { Preset } from '../constants.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Where `holdfast relay` listens without `--listen`: every IPv4 interface, fixed ports so the
 * addresses members are given stay valid across restarts (with `--key-file`). 4001 is the
 * usual libp2p TCP port; WebSockets on the next one is what browsers dial.
 */
export const RELAY_LISTEN = ['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/ws']

/** ms `holdfast join` waits for a relay to connect and authenticate: a dial on a slow link plus the realm auth */
export const RELAY_TIMEOUT_MS = 10_000

/** the value of a flag that must be there */
export function requiredString (values: OptionValues, flag: string): string {
  const value = values[flag]
  if (typeof value !== 'string' || value === '') {
    throw new UsageError(`--${flag} is required`)
  }
  return value
}

/** the values of a repeatable string flag (`multiple: true`) */
export function strings (values: OptionValues, flag: string): string[] {
  const value = values[flag]
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
}

function parseMultiaddr (flag: string, value: string): Multiaddr {
  try {
    return multiaddr(value)
  } catch {
    throw new UsageError(`--${flag}: not a multiaddr: ${value}`)
  }
}

/** `--relay` values: at least one, each a multiaddr ending in the relay's `/p2p/<peer id>` */
export function relayAddrs (values: OptionValues): Multiaddr[] {
  const relays = strings(values, 'relay')
  if (relays.length === 0) {
    throw new UsageError('--relay is required')
  }
  return relays.map(value => {
    const ma = parseMultiaddr('relay', value)
    if (ma.getComponents().find(c => c.name === 'p2p') == null) {
      throw new UsageError(`--relay: ${value} has no /p2p/<peer id>`)
    }
    return ma
  })
}

/** `--listen` values as libp2p prints them (so failures can be matched), or `fallback` */
export function listenAddrs (values: OptionValues, fallback: string[]): string[] {
  const listen = strings(values, 'listen')
  return (listen.length > 0 ? listen : fallback).map(value => parseMultiaddr('listen', value).toString())
}

export function presetOption (values: OptionValues, fallback: Preset): Preset {
  const value = values.preset ?? fallback
  if (!PRESET_NAMES.includes(value as Preset)) {
    throw new UsageError(`--preset must be one of ${PRESET_NAMES.join(', ')}`)
  }
  return value as Preset
}

/** a positive whole number of milliseconds */
export function msOption (values: OptionValues, flag: string, fallback: number): number {
  const value = values[flag]
  if (value === undefined) {
    return fallback
  }
  const ms = Number(value)
  if (typeof value !== 'string' || !/^\d+$/.test(value) || ms <= 0) {
    throw new UsageError(`--${flag} must be a positive number of milliseconds`)
  }
  return ms
}

/** `ENOENT: no such file or directory, open '/x'` → `no such file or directory` */
function fsReason (err: any): string {
  return String(err?.message ?? err).replace(/^E[A-Z]+: /, '').split(',')[0]
}

/**
 * The PSK from a file (as `holdfast keygen` writes it: base64 or hex, surrounding whitespace
 * ignored), checked by the realm's own key derivation so a bad one fails here, with the
 * realm's message, which names the rule and never the key.
 */
export async function readPskFile (path: string): Promise<string> {
  let text: string
  try {
    text = (await readFile(path, 'utf8')).trim()
  } catch (err) {
    throw new CliError(`cannot read PSK file ${path}: ${fsReason(err)}`)
  }
  try {
    deriveKeys(text)
  } catch (err: any) {
    throw new CliError(`bad PSK file ${path}: ${err.name === 'InvalidConfigError' ? String(err.message) : 'not a PSK'}`)
  }
  return text
}

/**
 * The node's identity from a file (libp2p's protobuf private key encoding), made (Ed25519,
 * mode 0600) when missing, so a relay keeps its peer ID, and so its multiaddrs, across restarts.
 */
export async function loadOrCreateKey (path: string): Promise<PrivateKey> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err: any) {
    if (err?.code !== 'ENOENT') {
      throw new CliError(`cannot read key file ${path}: ${fsReason(err)}`)
    }
    const key = await generateKeyPair('Ed25519')
    try {
      // 'wx': never overwrite a key another process just wrote
      await writeFile(path, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
    } catch (err) {
      throw new CliError(`cannot write key file ${path}: ${fsReason(err)}`)
    }
    return key
  }
  try {
    return privateKeyFromProtobuf(bytes)
  } catch {
    throw new CliError(`bad key file ${path}: not a libp2p private key`)
  }
}
