// Shared aegir config. Browser tests run in Debian's Chromium, linked by
// scripts/use-system-chromium.mjs (npm run chromium) where playwright looks for its own.
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.dirname(fileURLToPath(import.meta.url))
process.env.PLAYWRIGHT_BROWSERS_PATH ??= path.join(root, '.cache', 'pw-browsers')

export default {}
