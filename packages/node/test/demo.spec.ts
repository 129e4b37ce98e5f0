import { expect } from 'aegir/chai'
import { STEPS } from '../src/cli/demo-steps.ts'
import { summaryTable } from '../src/cli/demo.ts'
import { holdfast, requireBuiltBin } from './fixtures/bin.ts'
import type { Run } from './fixtures/bin.ts'
import type { Check } from '../src/cli/demo-steps.ts'
import type { StepResult } from '../src/cli/demo.ts'

/** the demo's --json output, one object per line */
function events (run: Run): any[] {
  return run.stdout.trimEnd().split('\n').map(line => JSON.parse(line))
}

/** the named check of a step, which must be there */
function checkOf (step: StepResult, name: string | RegExp): Check {
  const found = step.checks.find(c => typeof name === 'string' ? c.name === name : name.test(c.name))
  expect(found, `${step.id} has a check ${String(name)}: ${step.checks.map(c => c.name).join('; ')}`).to.exist()
  return found as Check
}

describe('holdfast demo (the main job)', function () {
  // a relay and three real peers on 127.0.0.1: 5-15 s (the flap step may wait out the 5 s tolerance window)
  this.timeout(180_000)
  let json: Run
  let steps: StepResult[]

  before(async function () {
    requireBuiltBin()
    json = await holdfast('demo', '--json')
    steps = events(json).filter(e => e.type === 'step')
  })

  it('--json: every step ran, in order, and every one of its checks held; exit 0', () => {
    expect(json.stderr).to.equal('')
    const all = events(json)
    expect(all[0].type).to.equal('started')
    expect(all[0].peers).to.have.keys('alice', 'bob', 'carol')
    // each step's own error or failed checks first: they say why a later step never ran
    for (const step of steps) {
      expect(step.error, `${step.id}: ${step.error}`).to.be.undefined()
      expect(step.checks, step.id).to.not.be.empty()
      expect(step.checks.filter(c => !c.ok), step.id).to.deep.equal([])
      expect(step.ok, step.id).to.be.true()
    }
    expect(steps.map(s => s.id)).to.deep.equal(STEPS.map(s => s.id))
    const summary = all[all.length - 1]
    expect(summary).to.include({ type: 'summary', ok: true })
    expect(summary.steps).to.have.length(STEPS.length)
    expect(json.code).to.equal(0)
  })

  it('--json: the checks are the ones each capability stands on', () => {
    const byId = new Map(steps.map(s => [s.id, s]))
    const step = (id: string): StepResult => byId.get(id) as StepResult
    expect(checkOf(step('realm-formation'), 'alice lists the other 3 as members').ok).to.be.true()
    expect(checkOf(step('connect-by-id'), 'realm.connect(bob\'s peer ID) reaches bob').ok).to.be.true()
    const upgrade = step('relay-first-upgrade')
    expect(checkOf(upgrade, 'the first path is through the relay').detail).to.match(/^p2p-circuit/)
    expect(checkOf(upgrade, 'upgraded to a direct WebRTC path in the background').detail).to.include('direct-primary over webrtc')
    expect(checkOf(upgrade, 'the relayed connection is kept as a protected backup').ok).to.be.true()
    const flap = step('flap-hidden')
    expect(checkOf(flap, 'the app never saw bob go offline').detail).to.equal('peer:offline events: 0')
    expect(checkOf(flap, /^no redial inside the/).ok).to.be.true()
    expect(checkOf(step('wifi-to-cellular'), '6 events became one batch').detail).to.match(/^1 batch\(es\) of 6 events/)
    expect(checkOf(step('trim-spares-protected'), 'the trim closed exactly the unprotected peers').ok).to.be.true()
    expect(checkOf(step('trim-spares-protected'), 'every protected member is still connected').detail).to.match(/^3\/3 members kept/)
    const pending = step('pending-fail-fast')
    expect(checkOf(pending, '200 requests were pending on bob').ok).to.be.true()
    expect(checkOf(pending, 'at once, not at their timeout').ok).to.be.true()
  })

  it('the summary table: one ok row per step, with its time and evidence', () => {
    // from the --json run's results: the plain output itself is the main job's, run by .ci/run
    const [header, rule, ...rows] = summaryTable(steps)
    expect(header).to.match(/^#\s+step\s+result\s+time\s+evidence/)
    expect(rule).to.match(/^-\s+-+/)
    expect(rows).to.have.length(STEPS.length)
    STEPS.forEach((step, i) => {
      expect(rows[i]).to.match(new RegExp(`^${i + 1}  ${step.title} +ok +\\d+ ms  \\S`))
    })
  })
})
