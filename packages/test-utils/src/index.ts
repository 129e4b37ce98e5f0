/**
 * @packageDocumentation
 *
 * Private test helpers for the holdfast packages: real libp2p nodes wired over
 * `@libp2p/memory` or TCP on 127.0.0.1, a fake clock implementing holdfast's `Clock`, and
 * leak checks over a service's `internalSizes()`. Not published.
 *
 * - `createNode({ transport: 'memory' | 'tcp', services, config })`: a started node with noise, yamux, identify and ping, on a unique `/memory/...` address or on `/ip4/127.0.0.1/tcp/0`
 * - `createNodes(n)`, `connect(a, b, { force })` (resolves when both ends have the connection), `disconnect(a, b)` (resolves when both ends saw `peer:disconnect`), `stopAll`
 * - `onceEvent(target, type, filter | { filter, signal, timeout })`: the detail of the first matching event of a libp2p node, a holdfast service (any main-event target) or the cleanup broadcaster (`subscribe`); the listener is gone once the wait settles, and a timeout rejects with libp2p's `TimeoutError`
 * - `createFakeClock()`: a holdfast `Clock` on `@sinonjs/fake-timers` with `tick`, `tickAsync` and `countTimers`; nothing global is faked, so libp2p keeps real time and only the code handed the clock sees fake time
 * - `expectNoLeaks(service, except?)` / `leftovers(service)`: every `internalSizes()` entry must be zero; `stopAndExpectNoLeaks(nodes, service, except?)` stops the nodes first, then checks that service of each
 * - `seededRandom(seed)`: a uniform [0, 1) source that repeats itself, for jitter and populations a failing run must replay
 * - from `@holdfast/test-utils/infrastructure` (Node only: TCP, WebRTC): a plain circuit relay (`relayServer`) and kad-dht server (`dhtServer`, `joinDht`), the peers that reserve on the relay and answer `ECHO_PROTOCOL` (`relayedPeer(relay, { reach, services })`, `echo(stream, text)`, `circuitAddrs`, `tcpAddrOf`, `hasCircuitAddr`), and a kad-dht PUT_VALUE made by hand
 * - from `@holdfast/test-utils/netns` (Node only, so browser bundles of the other helpers stay clean): `spawnInNetns({ script, args, env, addresses })`: `node script` in its own network namespace (`unshare -n`, Linux, root) with a veth pair `hf0`/`hf1` on 198.51.100.1 and .2, both ends inside and no route out, for WebRTC, which needs a non-loopback interface; it talks JSON lines (`next(filter)`, `send(obj)`) and `stop()`s within a bound. `netnsAvailable()` says whether this machine can, `linkDown`/`linkUp` cut and restore a link
 * - from `@holdfast/test-utils/browser` (Node only): `startBrowserHarness({ entry, resolveDir, workingDir?, backForwardCache? })` bundles `entry` for the browser with esbuild (the `browser` fields apply), serves it from 127.0.0.1 (`url`: `/` loads the bundle, any other path is a page without it) and launches Debian's Chromium through playwright-core's `executablePath` (`CHROMIUM_PATH`, else `/usr/lib/chromium/chromium`; never a downloaded browser; `chromiumPath()` throws saying how to install it). It returns `{ bundle, metafile, url, browser, close() }`; open pages on `browser`
 */

export { createNode, createNodes, connect, disconnect, stopAll } from './nodes.ts'
export { onceEvent } from './events.ts'
export type { OnceEventArg, OnceEventOptions, Subscribable } from './events.ts'
export type { NodeOptions, TransportKind } from './nodes.ts'
export { createFakeClock } from './clock.ts'
export type { FakeClock } from './clock.ts'
export { expectNoLeaks, leftovers, stopAndExpectNoLeaks } from './leaks.ts'
export { seededRandom } from './random.ts'
