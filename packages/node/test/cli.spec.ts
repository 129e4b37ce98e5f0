import { deriveKeys } from '@holdfast/realm'
import { expect } from 'aegir/chai'
import { holdfast, requireBuiltBin } from './fixtures/bin.ts'

describe('holdfast (the command)', () => {
  before(function () {
    requireBuiltBin()
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
