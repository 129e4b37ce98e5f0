/**
 * @packageDocumentation
 *
 * One call that builds a libp2p node with every holdfast service wired in: TCP (Node),
 * WebSockets, WebRTC, WebRTC-direct and circuit relay transports, noise, yamux, identify, ping,
 * AutoNAT, DCUtR, kad-dht (under the realm's protocol when a realm is set), gossipsub, the
 * cleanup broadcaster, the watermark connection manager, the path selector, the reconnector,
 * the network supervisor and the realm.
 *
 * @example
 *
 * ```TypeScript
 * import { createHoldfastNode } from '@holdfast/node'
 *
 * const node = await createHoldfastNode({
 *   realm: { psk: process.env.REALM_PSK! },
 *   relays: ['/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW...'],
 *   preset: 'mobile'
 * })
 * node.services.realm.addEventListener('member:joined', ({ detail }) => {
 *   console.info('member', detail.peer.toString())
 * })
 * const connection = await node.services.realm.connect(memberPeerId)
 * ```
 */

export { createHoldfastNode } from './node.ts'
export type { HoldfastNode, HoldfastNodeOptions, HoldfastRealmNode, HoldfastRealmServices, HoldfastServices } from './node.ts'
export { MAX_CONNECTIONS, PRESETS, PRESET_NAMES, REALM_RELAY_RESERVATIONS } from './constants.ts'
export type { Preset, PresetSettings } from './constants.ts'
