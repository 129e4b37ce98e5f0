/**
 * The access boundary over WebRTC Direct. WebRTC needs a non-loopback interface, so the member
 * and the outsider run in one network namespace of their own (spawnInNetns), driven by
 * test/fixtures/boundary-webrtc.ts: see there for the lines it prints.
 */

import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { netnsAvailable, spawnInNetns } from '@holdfast/test-utils/netns'
import { expect } from 'aegir/chai'
import type { NetnsProcess } from '@holdfast/test-utils/netns'

/** run compiled: the child is a plain `node`, without the test runner's type stripping */
const FIXTURE = fileURLToPath(new URL('../dist/test/fixtures/boundary-webrtc.js', import.meta.url))
/** ms, as in boundary.spec.ts */
const AUTH_TIMEOUT = 500
const MARGIN = 1_000
const EARLY = 50
/** ms for each line: a node start plus an ICE exchange on a veth pair take well under this */
const LINE_TIMEOUT = 20_000

describe('the realm as an access boundary over WebRTC Direct (network namespace)', () => {
  let proc: NetnsProcess | undefined

  before(async () => {
    // we are root on these machines, in CI and out of it: not being able to is a failure, not a skip
    const available = await netnsAvailable()
    if (!available.ok) {
      throw new Error(`network namespaces must work here: ${available.why}`)
    }
    if (!existsSync(FIXTURE)) {
      throw new Error(`${FIXTURE} is missing: run npm run build first`)
    }
  })

  afterEach(async () => {
    await proc?.stop()
    proc = undefined
  })

  it('a silent outsider is closed at authTimeout, denied on redial and on dial-out, each attempt counted', async () => {
    proc = spawnInNetns({ script: FIXTURE, args: [String(AUTH_TIMEOUT)], timeoutMs: LINE_TIMEOUT })
    const fail = (m: any): boolean => m.type === 'error'
    const next = async (type: string): Promise<any> => {
      const msg = await proc?.next(m => m.type === type || fail(m))
      if (fail(msg)) {
        throw new Error(`the fixture failed: ${msg.name}: ${msg.message}`)
      }
      return msg
    }

    const listening = await next('listening')
    expect(listening.member[0]).to.match(/^\/ip4\/198\.51\.100\.1\/udp\/\d+\/webrtc-direct\/certhash\//)
    const connected = await next('connected')
    expect(connected.direct).to.be.true()
    const closed = await next('closed')
    // eslint-disable-next-line no-console
    console.info(`      [boundary] WebRTC Direct: outsider held ${closed.outsiderMs.toFixed(1)} ms, member ${closed.memberMs.toFixed(1)} ms (authTimeout ${AUTH_TIMEOUT}; dial ${connected.dialMs.toFixed(1)} ms)`)
    expect(closed.reason).to.equal('auth-timeout')
    expect(closed.memberMs, 'member side').to.be.within(AUTH_TIMEOUT - EARLY, AUTH_TIMEOUT + MARGIN)
    expect(closed.outsiderMs, 'outsider side').to.be.within(AUTH_TIMEOUT - EARLY, AUTH_TIMEOUT + MARGIN)
    expect(closed.outsiderConnections).to.equal(0)

    const redial = await next('redial')
    // eslint-disable-next-line no-console
    console.info(`      [boundary] WebRTC Direct: redial while denied ${JSON.stringify(redial)}`)
    expect(redial.reason).to.equal('denied')
    expect(redial.memberOpened, 'the member never opened the connection').to.equal(0)
    if (redial.outcome === 'resolved') {
      expect(redial.closedAfterMs, 'dropped by the gate, not by the auth timer').to.be.below(AUTH_TIMEOUT)
    }
    expect(await next('dial-out')).to.include({ outcome: 'rejected', error: 'DialDeniedError' })

    const { stats, sizes, memberConnections } = await next('stats')
    expect(stats.connectionsRejected).to.deep.equal({ 'auth-failed': 0, 'auth-timeout': 1, denied: 2 })
    expect(stats.authFailures).to.deep.equal({ timeout: 1 })
    expect(sizes).to.include({ pendingAuth: 0, denied: 1 })
    expect(memberConnections).to.equal(0)
    expect(await proc.stop()).to.deep.equal({ code: 0, signal: null })
  })
})
