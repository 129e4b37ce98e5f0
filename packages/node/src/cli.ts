#!/usr/bin/env node
/**
 * The `holdfast` command (Node only). An error is one line on stderr and a non-zero exit, never
 * a stack trace unless `--debug`: exit 2 for bad usage, 1 for a command that failed.
 */
import { parseArgs } from 'node:util'
import { UsageError } from './cli/command.ts'
import { demo } from './cli/demo.ts'
import { join } from './cli/join.ts'
import { keygen } from './cli/keygen.ts'
import { relay } from './cli/relay.ts'
import type { Command, CommandIo, OptionValues } from './cli/command.ts'
import type { ParseArgsOptionsConfig } from 'node:util'

const COMMANDS: Record<string, Command> = { keygen, relay, join, demo }

const COMMON: ParseArgsOptionsConfig = {
  help: { type: 'boolean', short: 'h' },
  debug: { type: 'boolean' }
}

const USAGE = ['usage:', ...Object.values(COMMANDS).map(c => `  ${c.usage}`), '  (every command: --help, --debug for stack traces)'].join('\n')

function parse (argv: string[]): { command?: Command, values: OptionValues } {
  const name = argv.find(arg => !arg.startsWith('-'))
  const command = name == null ? undefined : COMMANDS[name]
  if (name != null && command == null) {
    throw new UsageError(`unknown command '${name}'`)
  }
  try {
    const parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...COMMON, ...command?.options } })
    const extra = parsed.positionals.slice(1)
    if (extra.length > 0) {
      throw new UsageError(`unexpected argument '${extra[0]}'`)
    }
    return { command, values: parsed.values }
  } catch (err: any) {
    if (err.name === 'UsageError') {
      throw err
    }
    // node:util names the offending flag in its first sentence; the rest is advice for scripts
    throw new UsageError(String(err.message).split('. ')[0])
  }
}

async function main (argv: string[]): Promise<number> {
  const debug = argv.includes('--debug')
  const controller = new AbortController()
  const stop = (): void => { controller.abort() }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    const { command, values } = parse(argv)
    if (command == null || values.help === true) {
      process.stdout.write(`${command?.usage != null ? `usage: ${command.usage}` : USAGE}\n`)
      return 0
    }
    const io: CommandIo = {
      print: (line) => { process.stdout.write(`${line}\n`) },
      isTTY: process.stdout.isTTY === true,
      signal: controller.signal
    }
    return await command.run(values, io)
  } catch (err: any) {
    process.stderr.write(`holdfast: ${String(err?.message ?? err)}${err?.name === 'UsageError' ? ' (holdfast --help)' : ''}\n`)
    if (debug && err?.stack != null) {
      process.stderr.write(`${String(err.stack)}\n`)
    }
    return err?.name === 'UsageError' ? 2 : 1
  } finally {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
}

// libp2p (WebRTC in particular) may leave native handles behind after stop: exit explicitly
process.exit(await main(process.argv.slice(2)))
