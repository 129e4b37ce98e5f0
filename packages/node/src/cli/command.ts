/**
 * What every `holdfast` command shares: its option table, its run function, and the two error
 * kinds the entry point turns into one line on stderr (exit 2 for bad usage, 1 for a failure).
 */
import type { ParseArgsOptionsConfig } from 'node:util'

export type OptionValues = Record<string, string | boolean | Array<string | boolean> | undefined>

export interface CommandIo {
  /** one line on stdout */
  print(line: string): void
  /** stdout is a terminal (a live view may redraw it) */
  isTTY: boolean
  /** aborted on SIGINT / SIGTERM: long-running commands stop their node and return */
  signal: AbortSignal
}

export interface Command {
  /** one line for the usage text */
  usage: string
  options: ParseArgsOptionsConfig
  /** resolves with the exit code */
  run(values: OptionValues, io: CommandIo): Promise<number>
}

/** wrong flags or arguments: exit 2 */
export class UsageError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** a command that could not do its job (bad PSK file, unreachable relay, port in use): exit 1 */
export class CliError extends Error {
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'CliError'
  }
}
