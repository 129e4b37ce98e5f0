/**
 * `holdfast relay`: a realm relay and bootstrap node. It is a realm member itself (members
 * learn of each other through its gossip) and gives circuit relay reservations to
 * authenticated members only, so it needs the realm's PSK.
 */
import { once } from 'node:events'
import { FaultTolerance } from '@libp2p/interface'
import { createHoldfastNode } from '../node.ts'
import { CliError } from './command.ts'
import { listenAddrs, loadOrCreateKey, readPskFile, RELAY_LISTEN, requiredString } from './options.ts'
import { eventPrinter, reason, record } from './output.ts'
import type { Command } from './command.ts'

const RELAY_EVENTS = new Set(['member:joined', 'member:left'])

/** how libp2p's listen errors read to a person */
const LISTEN_REASONS: Record<string, string> = {
  EADDRINUSE: 'address in use',
  EADDRNOTAVAIL: 'address not available on this machine',
  EACCES: 'permission denied',
  UnsupportedListenAddressError: 'no transport listens on such an address'
}

/**
 * With `FATAL_ALL`, libp2p stops the node and throws one error whose message lists each
 * failed address as `\n  <addr>: <error>`; that list is the only place it names them.
 */
function listenError (err: any, listen: string[]): Error {
  if (err?.name !== 'UnsupportedListenAddressesError') {
    return err
  }
  const message = String(err.message)
  const failures = listen.flatMap(addr => {
    const marker = `\n  ${addr}: `
    const at = message.indexOf(marker)
    if (at < 0) {
      return []
    }
    const line = message.slice(at + marker.length).split('\n')[0]
    const known = Object.keys(LISTEN_REASONS).find(code => line.includes(code))
    return [`${addr}: ${known != null ? LISTEN_REASONS[known] : line}`]
  })
  return new CliError(`cannot listen on ${failures.length > 0 ? failures.join('; ') : `${listen.join(', ')}: ${reason(err)}`}`)
}

export const relay: Command = {
  usage: `holdfast relay --psk-file F [--listen <ma>]... [--key-file K] [--json]
      run a realm relay until Ctrl-C; prints its addresses (default --listen ${RELAY_LISTEN.join(' ')})`,
  options: {
    'psk-file': { type: 'string' },
    listen: { type: 'string', multiple: true },
    'key-file': { type: 'string' },
    json: { type: 'boolean' }
  },
  async run (values, io) {
    const pskFile = requiredString(values, 'psk-file')
    const listen = listenAddrs(values, RELAY_LISTEN)
    const keyFile = values['key-file'] === undefined ? undefined : requiredString(values, 'key-file')
    const psk = await readPskFile(pskFile)
    const privateKey = keyFile === undefined ? undefined : await loadOrCreateKey(keyFile)

    const node = await createHoldfastNode({
      realm: { psk },
      relayServer: true,
      preset: 'server',
      listen,
      libp2p: {
        privateKey,
        // a relay that does not listen where it was told is no use to the members given that address
        transportManager: { faultTolerance: FaultTolerance.FATAL_ALL },
        start: false
      }
    })
    const printer = eventPrinter(io, values.json === true, RELAY_EVENTS)
    const unsubscribe = node.services.broadcaster.subscribe('*', printer.onEvent)
    try {
      try {
        await node.start()
      } catch (err) {
        throw listenError(err, listen)
      }
      const addrs = node.getMultiaddrs().map(String)
      if (values.json === true) {
        printer.print(record('listening', { peerId: node.peerId, realm: node.services.realm.id, addrs }))
      } else {
        addrs.forEach(addr => { io.print(addr) })
      }
      printer.release()
      if (!io.signal.aborted) {
        await once(io.signal, 'abort')
      }
    } finally {
      unsubscribe()
      await node.stop()
    }
    return 0
  }
}
