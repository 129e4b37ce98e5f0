#!/usr/bin/env node
/**
 * The `holdfast` command (Node only). An error is one line on stderr and a non-zero exit,
 * never a stack trace: exit 2 for bad usage, 1 for a command that failed.
 */
import { parseArgs } from 'node:util'

const USAGE = 'usage: holdfast keygen'

class UsageError extends Error {
  constructor (message: string) {
    super(`${message} (${USAGE})`)
    this.name = 'UsageError'
  }
}

/**
 * A new realm PSK: 32 random bytes (the realm's minimum). Padded base64 always ends in '=' for
 * 32 bytes, so the realm never mistakes it for hex.
 */
function keygen (): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64')
}

/** one command line in, what to print on stdout out */
function run (argv: string[]): string {
  let parsed
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { help: { type: 'boolean', short: 'h' } } })
  } catch (err: any) {
    // node:util names the offending flag in its first sentence; the rest is advice for scripts
    throw new UsageError(String(err.message).split('. ')[0])
  }
  const [command, ...rest] = parsed.positionals
  if (parsed.values.help === true || command == null) {
    return USAGE
  }
  if (command !== 'keygen') {
    throw new UsageError(`unknown command '${command}'`)
  }
  if (rest.length > 0) {
    throw new UsageError(`unexpected argument '${rest[0]}'`)
  }
  return keygen()
}

try {
  process.stdout.write(`${run(process.argv.slice(2))}\n`)
} catch (err: any) {
  process.stderr.write(`holdfast: ${err.message}\n`)
  process.exitCode = err.name === 'UsageError' ? 2 : 1
}
