// Browser tests drive Debian's Chromium (a browser download is impossible here and unwanted
// anywhere: we test the browser users have). Installs it when missing and we may (root with
// apt-get), then links it where playwright looks. Otherwise stops with what to do.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium'

function run (cmd, args) {
  console.log(`ensure-chromium: ${cmd} ${args.join(' ')}`)
  execFileSync(cmd, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
}

if (!fs.existsSync(CHROMIUM)) {
  const hasApt = fs.existsSync('/usr/bin/apt-get')
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (!hasApt || !isRoot) {
    console.error(`ensure-chromium: no Chromium at ${CHROMIUM}. Install Debian's chromium package (apt-get install -y chromium) or set CHROMIUM_PATH to a Chromium binary, then run the tests again.`)
    process.exit(1)
  }
  run('apt-get', ['update', '-qq'])
  run('apt-get', ['install', '-y', '-qq', 'chromium'])
}
execFileSync(process.execPath, ['scripts/use-system-chromium.mjs', CHROMIUM], { stdio: 'inherit' })
