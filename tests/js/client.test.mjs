// One client with a socket of its own: states, backoff, resubscription with
// since/epoch, recovered: false, timeouts — the seed's scenario 4 without a browser.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { BroadcastClient, ClientState, STABLE_AFTER_MS } from '../../broadcast_cli/static/broadcast.js'
import { World } from './fakes.mjs'

const URL = 'ws://127.0.0.1:8000/ws/broadcast'

function solo (world, options = {}) {
  const client = new BroadcastClient(URL, { shared: false, environment: world.env('tab'), ...options })
  const states = []
  client.onStateChange((state) => states.push(state))
  return { client, states }
}

describe('BroadcastClient on its own socket', () => {
  it('connects, offers the v1 subprotocol and reports each state once', async () => {
    const world = new World()
    const { client, states } = solo(world)
    assert.equal(client.state, ClientState.DISCONNECTED)
    client.connect()
    client.connect() // idempotent
    assert.equal(world.sockets.length, 1)
    assert.deepEqual(world.sockets[0].protocols, ['broadcast.v1'])
    assert.equal(client.state, ClientState.CONNECTING)
    await world.settle()
    assert.equal(client.state, ClientState.CONNECTED)
    assert.equal(client.role, 'solo')
    client.disconnect()
    assert.deepEqual(states, ['connecting', 'connected', 'disconnected'])
    assert.equal(world.sockets[0].closedByClient, true)
  })

  it('accepts http URLs and paths, and refuses others', () => {
    const world = new World()
    const env = world.env('tab')
    assert.equal(new BroadcastClient('http://h:1/ws/broadcast', { environment: env }).url, 'ws://h:1/ws/broadcast')
    assert.equal(new BroadcastClient('https://h/ws/broadcast', { environment: env }).url, 'wss://h/ws/broadcast')
    assert.throws(() => new BroadcastClient('ftp://h/x', { environment: env }), TypeError)
    assert.throws(() => new BroadcastClient('', { environment: env }), TypeError)
  })

  it('delivers events to each handler; the unsubscribe function unsubscribes once the last handler goes', async () => {
    const world = new World()
    const { client } = solo(world)
    client.connect()
    await world.settle()
    const a = []
    const b = []
    const stopA = client.subscribe('orders', (event) => a.push(event.seq))
    const stopB = client.subscribe('orders', (event) => b.push(event.seq))
    await world.settle()
    const ws = world.sockets[0]
    assert.equal(ws.subscribes().length, 1)
    world.server.publish('orders', 'order.created', { entity_id: '1' })
    stopA()
    stopA()
    world.server.publish('orders')
    assert.deepEqual(a, [1])
    assert.deepEqual(b, [1, 2])
    assert.equal(ws.sent.filter((frame) => 'unsubscribe' in frame).length, 0)
    stopB()
    assert.deepEqual(ws.sent.at(-1), { unsubscribe: ['orders'], id: 2 })
  })

  it('reconnects with backoff and jitter, and resubscribes with since/epoch: nothing missed, nothing twice', async () => {
    const world = new World()
    const { client, states } = solo(world, { backoff: { initial: 100, maximum: 1000, factor: 2 } })
    const seqs = []
    client.subscribe('orders', (event) => seqs.push(event.seq))
    client.connect()
    await world.settle()
    world.server.publish('orders')
    world.server.publish('orders')
    world.sockets[0].drop(1012)
    assert.equal(client.state, ClientState.RECONNECTING)
    world.server.publish('orders') // missed while away
    world.server.publish('orders')
    assert.deepEqual(world.clock.pending(), [75]) // first delay: initial * (0.5 + random / 2), random = 0.5
    world.clock.advance(74)
    assert.equal(world.sockets.length, 1)
    world.clock.advance(1)
    await world.settle()
    const ws = world.sockets[1]
    assert.deepEqual(ws.subscribes()[0].subscribe, [{ channel: 'orders', since: 2, epoch: 'e1' }])
    world.server.publish('orders')
    assert.deepEqual(seqs, [1, 2, 3, 4, 5])
    assert.deepEqual(states, ['connecting', 'connected', 'reconnecting', 'connected'])
  })

  it('grows the delay while connections keep failing, and starts over after a stable one', async () => {
    const world = new World({ server: false })
    world.random = () => 1
    const { client } = solo(world, { backoff: { initial: 100, maximum: 1000, factor: 2 } })
    client.connect()
    const delays = []
    for (let i = 0; i < 6; i++) {
      world.sockets.at(-1).drop(1006)
      delays.push(world.clock.pending().at(-1))
      world.clock.advance(delays.at(-1))
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000])
    assert.equal(client.state, ClientState.CONNECTING) // never connected yet
    world.sockets.at(-1).accept()
    world.clock.advance(STABLE_AFTER_MS)
    world.sockets.at(-1).drop(1006)
    assert.equal(world.clock.pending().at(-1), 100)
    assert.equal(client.state, ClientState.RECONNECTING)
  })

  it('stops for good on a close code that forbids reconnecting', async () => {
    const world = new World()
    const { client } = solo(world)
    client.connect()
    await world.settle()
    world.sockets[0].drop(1008)
    assert.equal(client.state, ClientState.DISCONNECTED)
    assert.deepEqual(world.clock.pending(), [])
  })

  it('calls onUnrecovered (recovered: false) when the server lost what was missed, then goes on', async () => {
    const world = new World()
    const { client } = solo(world)
    const seqs = []
    const losses = []
    client.subscribe('orders', (event) => seqs.push(event.seq), { onUnrecovered: (info) => losses.push(info) })
    client.connect()
    await world.settle()
    world.server.publish('orders')
    world.sockets[0].drop(1012)
    world.server.reset('e2') // an in-memory server restarted
    world.server.publish('orders')
    world.clock.advance(100)
    await world.settle()
    assert.equal(losses.length, 1)
    assert.deepEqual(losses[0], {
      channel: 'orders',
      recovered: false,
      reason: 'not_recovered',
      position: { seq: 1, epoch: 'e2' },
      previous: { seq: 1, epoch: 'e1' },
    })
    world.server.publish('orders')
    assert.deepEqual(seqs, [1, 2])
    assert.deepEqual(client.position('orders'), { seq: 2, epoch: 'e2' })
  })

  it('drops a connection whose request goes unanswered, and one whose handshake never completes', async () => {
    const world = new World({ server: false })
    const { client } = solo(world, { requestTimeout: 500, openTimeout: 300 })
    client.subscribe('orders', () => {})
    client.connect()
    world.clock.advance(300)
    assert.equal(world.sockets.length, 1)
    assert.equal(world.sockets[0].closedByClient, true)
    world.clock.advance(world.clock.pending().at(-1))
    const ws = world.sockets[1]
    ws.accept()
    assert.equal(ws.subscribes().length, 1)
    world.clock.advance(499)
    assert.equal(ws.closedByClient, false)
    world.clock.advance(1)
    assert.equal(ws.closedByClient, true)
    assert.equal(client.state, ClientState.RECONNECTING)
  })

  it('leaves no timer behind after disconnect(), even with a request unanswered (Node would wait for it)', () => {
    const world = new World({ server: false })
    const { client } = solo(world)
    client.subscribe('orders', () => {})
    client.connect()
    world.sockets[0].accept()
    assert.equal(world.sockets[0].subscribes().length, 1)
    assert.equal(world.clock.pending().length, 1) // the subscribe's answer is awaited
    client.disconnect()
    assert.deepEqual(world.clock.pending(), [])
  })

  it('keeps subscriptions across disconnect() and connect()', async () => {
    const world = new World()
    const { client } = solo(world)
    const seqs = []
    client.subscribe('orders', (event) => seqs.push(event.seq))
    client.connect()
    await world.settle()
    world.server.publish('orders')
    client.disconnect()
    world.server.publish('orders')
    client.connect()
    await world.settle()
    assert.deepEqual(seqs, [1, 2])
  })

  it('calls onReady with each ack, and onError when the server refuses', async () => {
    const world = new World({ server: false })
    const { client } = solo(world)
    const acks = []
    const errors = []
    client.subscribe('orders', () => {}, { onReady: (ack) => acks.push(ack) })
    client.connect()
    const ws = world.sockets[0]
    ws.accept()
    ws.deliver({ type: 'ack', id: 1, channels: { orders: { seq: 3, epoch: 'e1' } } })
    assert.deepEqual(acks, [{ channel: 'orders', seq: 3, epoch: 'e1', since: null }])
    client.subscribe('secret', () => {}, { onError: (error) => errors.push(error) })
    assert.deepEqual(ws.subscribes()[1], { subscribe: ['secret'], id: 2 })
    ws.deliver({ type: 'error', id: 2, code: 'too_many_subscriptions', message: 'limit' })
    assert.deepEqual(errors, [{ channel: 'secret', code: 'too_many_subscriptions', message: 'limit' }])
    assert.deepEqual(client.channels(), ['orders'])
    ws.drop(1012)
    world.clock.advance(100)
    world.sockets[1].accept()
    world.sockets[1].deliver({ type: 'ack', id: 3, channels: { orders: { seq: 3, epoch: 'e1', recovered: true } } })
    assert.equal(acks.length, 2)
    assert.equal(acks[1].recovered, true)
  })

  it('refuses bad channel names and options, and isolates a failing handler', async () => {
    const world = new World()
    const { client } = solo(world)
    assert.throws(() => client.subscribe('a b', () => {}), TypeError)
    assert.throws(() => client.subscribe('orders', null), TypeError)
    assert.throws(() => client.subscribe('orders', () => {}, { since: -1 }), TypeError)
    assert.throws(() => client.subscribe('orders', () => {}, { epoch: 'e1' }), TypeError)
    const seqs = []
    client.subscribe('orders', () => { throw new Error('boom') })
    client.subscribe('orders', (event) => seqs.push(event.seq))
    client.connect()
    await world.settle()
    world.server.publish('orders')
    assert.deepEqual(seqs, [1])
    assert.equal(world.errors.length, 1)
  })

  it('resumes from a kept position with since/epoch', async () => {
    const world = new World()
    for (let i = 0; i < 5; i++) world.server.publish('orders')
    const { client } = solo(world)
    const seqs = []
    client.subscribe('orders', (event) => seqs.push(event.seq), { since: 3, epoch: 'e1' })
    client.connect()
    await world.settle()
    assert.deepEqual(world.sockets[0].subscribes()[0].subscribe, [{ channel: 'orders', since: 3, epoch: 'e1' }])
    assert.deepEqual(seqs, [4, 5])
  })
})

describe('connection tokens', () => {
  it('sends a token with the handshake, fetching a fresh one before every attempt', async () => {
    const world = new World()
    let minted = 0
    const { client } = solo(world, { token: async () => `t${++minted}`, backoff: { initial: 10, maximum: 10 } })
    client.connect()
    await world.settle()
    assert.equal(client.state, ClientState.CONNECTED)
    assert.equal(new globalThis.URL(world.sockets[0].url).searchParams.get('token'), 't1')
    world.sockets[0].drop(4001) // the token expired: reconnect with a fresh one
    assert.equal(client.state, ClientState.RECONNECTING)
    world.clock.advance(10)
    await world.settle()
    assert.equal(world.sockets.length, 2)
    assert.equal(new globalThis.URL(world.sockets[1].url).searchParams.get('token'), 't2')
    assert.equal(client.state, ClientState.CONNECTED)
    client.disconnect()
  })

  it('a string token goes as is; a refused one (4501) stops the client', async () => {
    const world = new World()
    const { client } = solo(world, { token: 'abc' })
    client.connect()
    await world.settle()
    assert.equal(new globalThis.URL(world.sockets[0].url).searchParams.get('token'), 'abc')
    world.sockets[0].drop(4501)
    assert.equal(client.state, ClientState.DISCONNECTED)
  })
})
