import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { deriveKeys } from '@holdfast/realm'
import { expect } from 'aegir/chai'

// the built file the package.json `bin` points at (build first), run by the Node that runs the tests
const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url))
// without the test runner's loader flags: the bin runs as a user runs it
const ENV = { ...process.env, NODE_OPTIONS: '' }

interface Run { code: number, stdout: string, stderr: string }

async function holdfast (...args: string[]): Promise<Run> {
  return new Promise(resolve => {
    execFile(process.execPath, [CLI, ...args], { env: ENV }, (err, stdout, stderr) => {
      resolve({ code: err == null ? 0 : Number(err.code), stdout, stderr })
    })
  })
}

describe('holdfast (the command)', () => {
  before(function () {
    if (!existsSync(CLI)) {
      throw new Error(`${CLI} is missing: run npm run build first`)
    }
  })

  it('keygen prints a fresh base64 PSK that a realm accepts', async () => {
    const [first, second] = await Promise.all([holdfast('keygen'), holdfast('keygen')])
    expect(first.code).to.equal(0)
    expect(first.stderr).to.equal('')
    const psk = first.stdout.trim()
    expect(Buffer.from(psk, 'base64')).to.have.length(32)
    expect(deriveKeys(psk).realmId).to.be.a('string')
    expect(second.stdout.trim()).to.not.equal(psk)
  })

  it('an unknown flag is one line on stderr naming it, exit 2, no stack trace', async () => {
    const result = await holdfast('keygen', '--frobnicate')
    expect(result.code).to.equal(2)
    expect(result.stdout).to.equal('')
    expect(result.stderr.trim().split('\n')).to.have.length(1)
    expect(result.stderr).to.match(/^holdfast: .*'--frobnicate'/)
    expect(result.stderr).to.not.include('    at ')
  })

  it('an unknown command is one line and exit 2', async () => {
    const result = await holdfast('teleport')
    expect(result.code).to.equal(2)
    expect(result.stderr.trim().split('\n')).to.deep.equal(['holdfast: unknown command \'teleport\' (holdfast --help)'])
  })
})
