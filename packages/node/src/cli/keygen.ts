import type { Command } from './command.ts'

/**
 * A new realm PSK: 32 random bytes (the realm's minimum). Padded base64 always ends in '=' for
 * 32 bytes, so the realm never mistakes it for hex.
 */
export function newPsk (): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64')
}

export const keygen: Command = {
  usage: 'holdfast keygen                      print a new realm PSK (base64)',
  options: {},
  async run (_values, io) {
    io.print(newPsk())
    return 0
  }
}
