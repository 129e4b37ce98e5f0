import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { ConnectionLimitError, addGaterLayer, gaterLayers, removeGaterLayer } from '../src/index.ts'
import type { GaterHost } from '../src/index.ts'
import type { ConnectionGater, PeerId } from '@libp2p/interface'

describe('the shared gater chain', () => {
  let a: PeerId
  let b: PeerId

  before(async () => {
    [a, b] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')].map(async key => peerIdFromPrivateKey(await key)))
  })

  /** an app's gater with a method of its own, as `createGater()`'s `denyPeer()` */
  function appGater (): ConnectionGater & { denied: Set<string>, denyPeer(peer: PeerId): void } {
    const denied = new Set<string>()
    return {
      denied,
      denyPeer (peer) { denied.add(peer.toString()) },
      denyDialPeer: async (peer) => denied.has(peer.toString())
    }
  }

  it('asks the app\'s gater and every layer: any of them denies', async () => {
    const base = appGater()
    const host: GaterHost = { connectionGater: base }
    addGaterLayer(host, 'one', { denyDialPeer: (peer) => peer.equals(a) })
    addGaterLayer(host, 'two', { denyInboundRelayReservation: async (peer) => peer.equals(b) })
    expect(await host.connectionGater.denyDialPeer?.(a)).to.be.true()
    expect(await host.connectionGater.denyDialPeer?.(b)).to.be.false()
    expect(await host.connectionGater.denyInboundRelayReservation?.(b)).to.be.true()
    expect(await host.connectionGater.denyOutboundRelayedConnection?.(a, b), 'nobody implements it: allowed').to.be.false()
    // the app's own methods still work through the chain
    ;(host.connectionGater as typeof base).denyPeer(b)
    expect(await host.connectionGater.denyDialPeer?.(b)).to.be.true()
    expect(gaterLayers(host)).to.deep.equal(['one', 'two'])
  })

  it('a layer\'s typed error reaches the dialler', async () => {
    const host: GaterHost = { connectionGater: {} }
    addGaterLayer(host, 'limits', { denyDialPeer: () => { throw new ConnectionLimitError('maxOutbound (0) reached') } })
    await expect(host.connectionGater.denyDialPeer?.(a)).to.eventually.be.rejected.with.property('name', 'ConnectionLimitError')
  })

  it('is restart-safe in any order: adding an owner again replaces its layer, and the last one out puts the app\'s gater back', async () => {
    const base = appGater()
    const host: GaterHost = { connectionGater: base }
    const realm = { denyDialPeer: (peer: PeerId) => peer.equals(a) }
    const manager = { denyDialPeer: () => false }
    for (let round = 0; round < 3; round++) {
      addGaterLayer(host, 'realm', realm)
      addGaterLayer(host, 'manager', manager)
      addGaterLayer(host, 'realm', realm)
      expect(gaterLayers(host)).to.deep.equal(['realm', 'manager'])
      expect(Object.getPrototypeOf(host.connectionGater), 'one chain, on the app\'s gater').to.equal(base)
      // stopped in either order
      removeGaterLayer(host, round % 2 === 0 ? 'realm' : 'manager')
      expect(host.connectionGater).to.not.equal(base)
      removeGaterLayer(host, round % 2 === 0 ? 'manager' : 'realm')
      expect(host.connectionGater).to.equal(base)
      expect(gaterLayers(host)).to.deep.equal([])
    }
    removeGaterLayer(host, 'nobody')
    expect(host.connectionGater).to.equal(base)
  })
})
