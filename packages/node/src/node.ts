import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { cleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import { watermarkConnectionManager } from '@holdfast/connection-manager'
import { InvalidConfigError } from '@holdfast/interface'
import { networkSupervisor } from '@holdfast/network-supervisor'
import { pathSelector } from '@holdfast/path-selector'
import { DHT_NAMESPACE, deriveKeys, membersOnly, realm, realmDhtProtocol, realmDhtSelector, realmDhtValidator } from '@holdfast/realm'
import { reconnector } from '@holdfast/reconnector'
import { autoNAT } from '@libp2p/autonat'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { FaultTolerance } from '@libp2p/interface'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { bootstrapDialer } from './bootstrap.ts'
import { MAX_CONNECTIONS, PING_STREAMS, PRESET_NAMES, PRESETS, REALM_RELAY_RESERVATIONS } from './constants.ts'
import { connectionGater, defaultListen, transports } from './transports.ts'
import type { Preset } from './constants.ts'
import type { CleanupBroadcaster } from '@holdfast/cleanup-broadcaster'
import type { WatermarkConnectionManagerService } from '@holdfast/connection-manager'
import type { NetworkSupervisor } from '@holdfast/network-supervisor'
import type { PathSelector } from '@holdfast/path-selector'
import type { Realm, RealmInit } from '@holdfast/realm'
import type { Reconnector } from '@holdfast/reconnector'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Ping } from '@libp2p/ping'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2pOptions } from 'libp2p'

export interface HoldfastNodeOptions {
  /** join this realm: `{ psk }` plus any other realm init. Without it the node has no realm service */
  realm?: RealmInit
  /**
   * relays, each with its `/p2p/<id>`: the node holds a reservation on each. A realm's own relays
   * authenticate as members; plain ones (any circuit relay v2, go-libp2p's among them) are kept
   * as the realm's infrastructure
   */
  relays?: Array<Multiaddr | string>
  /**
   * bootstrap peers, each with its `/p2p/<id>`, dialled at start: plain libp2p nodes such as DHT
   * servers, kept as the realm's infrastructure; the realm's members rendezvous through their DHT
   */
  bootstrap?: Array<Multiaddr | string>
  /**
   * keep-alive and idle settings of the services
   *
   * @default 'desktop'
   */
  preset?: Preset
  /**
   * also serve circuit relay v2 (to realm members only when a realm is set)
   *
   * @default false
   */
  relayServer?: boolean
  /** listen addresses; the default is TCP, WebSockets and WebRTC (127.0.0.1 only with the `test` preset) */
  listen?: string[]
  /** passed through to createLibp2p, over what this function chose (`services` are merged) */
  libp2p?: Partial<Libp2pOptions>
}

/** The services of every holdfast node, typed on `node.services` */
export interface HoldfastServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  autonat: unknown
  dcutr: unknown
  pubsub: GossipSub
  dht: KadDHT
  /** with a realm: a client of the public-protocol DHT (`/ipfs/kad/1.0.0`), where members rendezvous through plain DHT servers */
  rendezvous?: KadDHT
  broadcaster: CleanupBroadcaster
  /** the holdfast connection manager (`connectionManager` is libp2p's own component) */
  connections: WatermarkConnectionManagerService
  paths: PathSelector
  reconnector: Reconnector
  network: NetworkSupervisor
  /** present when `relayServer: true` */
  relay?: CircuitRelayService
}

export interface HoldfastRealmServices extends HoldfastServices {
  realm: Realm
}

export type HoldfastNode = Libp2p<HoldfastServices>
export type HoldfastRealmNode = Libp2p<HoldfastRealmServices>

/**
 * Builds (and, unless `libp2p.start` is false, starts) a libp2p node with every transport,
 * protocol and holdfast service wired so that they don't fight libp2p's own connection
 * manager and reconnect logic. Bad options throw `InvalidConfigError` before anything starts.
 */
export async function createHoldfastNode (options: HoldfastNodeOptions & { realm: RealmInit }): Promise<HoldfastRealmNode>
export async function createHoldfastNode (options?: HoldfastNodeOptions): Promise<HoldfastNode>
export async function createHoldfastNode (options: HoldfastNodeOptions = {}): Promise<HoldfastNode | HoldfastRealmNode> {
  const preset = options.preset ?? 'desktop'
  if (!PRESET_NAMES.includes(preset)) {
    throw new InvalidConfigError(`preset must be one of ${PRESET_NAMES.join(', ')}`, 'preset')
  }
  const settings = PRESETS[preset]
  const relays = parsePeers(options.relays ?? [], 'relays')
  const bootstrap = parsePeers(options.bootstrap ?? [], 'bootstrap')
  // throws InvalidConfigError for a bad PSK (without echoing it), before any socket opens
  const realmId = options.realm == null ? undefined : deriveKeys(options.realm.psk).realmId

  const pubsub = gossipsub({ heartbeatInterval: settings.gossipHeartbeat })
  const services: Record<string, (components: any) => unknown> = {
    // first: the other holdfast services find it by capability and publish through it
    broadcaster: cleanupBroadcaster(),
    connections: watermarkConnectionManager({ idleTimeout: settings.idleTimeout }),
    identify: identify(),
    ping: ping(PING_STREAMS),
    autonat: autoNAT(),
    dcutr: dcutr(),
    // an exclusive realm's gossip is for members and infrastructure only: an outsider on the
    // topic, for the seconds before its auth times out, would learn who the members are
    pubsub: options.realm != null && options.realm.exclusive !== false ? membersOnly(pubsub) : pubsub,
    dht: realmId == null
      ? kadDHT({ clientMode: preset === 'server' || preset === 'test' ? false : undefined })
      // a private DHT of the realm's members: its own protocol, the realm's records, LAN and loopback addresses kept; it serves members only
      : membersOnly(kadDHT({
        protocol: realmDhtProtocol(realmId),
        clientMode: options.relayServer === true || preset === 'server' || preset === 'test' ? false : undefined,
        peerInfoMapper: passthroughMapper,
        allowQueryWithZeroPeers: preset === 'test',
        validators: { [DHT_NAMESPACE]: realmDhtValidator },
        selectors: { [DHT_NAMESPACE]: realmDhtSelector }
      })),
    paths: pathSelector({ preset, ...(settings.upgradeTimeoutMs == null ? {} : { upgradeTimeoutMs: settings.upgradeTimeoutMs }) }),
    reconnector: reconnector(),
    network: networkSupervisor()
  }
  if (options.relayServer === true) {
    services.relay = circuitRelayServer(realmId == null ? {} : { reservations: REALM_RELAY_RESERVATIONS })
  }
  if (bootstrap.length > 0) {
    services.bootstrap = bootstrapDialer(bootstrap)
  }
  if (options.realm != null) {
    // the public DHT, as a client: members meet through plain DHT servers without being listed there
    services.rendezvous = kadDHT({ clientMode: true, peerInfoMapper: preset === 'test' ? passthroughMapper : removePrivateAddressesMapper })
    services.realm = realm({
      announceInterval: settings.announceInterval,
      ...options.realm,
      infrastructure: [...relays, ...bootstrap, ...(options.realm.infrastructure ?? [])]
    })
  }

  const listen = [
    ...(options.listen ?? defaultListen(preset === 'test')),
    // one reservation on each realm relay; this also dials it at start, so relays double as bootstrap peers
    ...relays.map(relay => `${relay.toString()}/p2p-circuit`)
  ]
  const overrides = options.libp2p ?? {}
  return createLibp2p({
    addresses: { listen },
    transports: transports(),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // an unreachable relay or a refused reservation must not fail the whole node
    transportManager: { faultTolerance: FaultTolerance.NO_FATAL },
    // in a browser: libp2p's default gate, but loopback may be dialled (transports.browser.ts)
    connectionGater: connectionGater(),
    ...overrides,
    connectionManager: {
      maxConnections: MAX_CONNECTIONS,
      ...(settings.inboundConnectionThreshold == null ? {} : { inboundConnectionThreshold: settings.inboundConnectionThreshold }),
      ...overrides.connectionManager
    },
    connectionMonitor: {
      // the path selector's heartbeat decides when a path failed (after failuresToDemote misses),
      // and the reconnector hides short drops: a single missed libp2p ping must not abort the connection
      abortConnectionOnPingFailure: false,
      ...overrides.connectionMonitor
    },
    services: { ...services, ...overrides.services }
  }) as unknown as Promise<HoldfastNode>
}

function parsePeers (peers: Array<Multiaddr | string>, option: 'relays' | 'bootstrap'): Multiaddr[] {
  return peers.map(peer => {
    let ma: Multiaddr
    try {
      ma = typeof peer === 'string' ? multiaddr(peer) : peer
    } catch {
      throw new InvalidConfigError(`${option}: not a multiaddr: ${String(peer)}`, option)
    }
    if (ma.getComponents().find(c => c.name === 'p2p') == null) {
      throw new InvalidConfigError(`${option}: ${ma.toString()} has no /p2p/<peer id>`, option)
    }
    return ma
  })
}
