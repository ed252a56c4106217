// The seed's "Frontend Integration Tests (Node.js)": the browser client
// (broadcast.js) under Node, with the `ws` package as its WebSocket, against a
// real `broadcast serve` on a real Redis — connect; subscribe and receive an
// event published through the HTTP API; reconnect after disconnect()/connect().
import assert from 'node:assert/strict'
import { after, afterEach, before, describe, it } from 'node:test'

import { BroadcastClient, ClientState } from '../../../broadcast_cli/static/broadcast.js'
import { Server, publish, record, scaled, stopAll, uniqueChannel, waitFor } from './harness.mjs'

/** @type {Server} */
let server
/** @type {BroadcastClient[]} */
const clients = []

/** A client of its own socket (Node has no Web Locks to share one), with its state changes recorded. */
function newClient (options = {}) {
  const client = new BroadcastClient(server.wsUrl, { shared: false, backoff: { initial: 50, maximum: 500 }, ...options })
  const states = []
  client.onStateChange((state) => states.push(state))
  clients.push(client)
  return { client, states }
}

function connected (client) {
  return waitFor(() => client.state === ClientState.CONNECTED, 10_000, () => `the client to connect (state ${client.state})`)
}

describe('the browser client under Node against a real server', { timeout: scaled(60_000) }, () => {
  before(async () => {
    server = await Server.start('server')
  })

  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect()
  })

  after(async () => {
    await stopAll([server])
  })

  it('connects (state connected, a socket of its own)', async () => {
    const { client, states } = newClient()
    assert.equal(client.state, ClientState.DISCONNECTED)
    client.connect()
    await connected(client)
    assert.deepEqual(states, ['connecting', 'connected'])
    assert.equal(client.role, 'solo')
    assert.equal(client.shared, false)
  })

  it('falls back to a socket of its own by default where there are no Web Locks (Node)', async (t) => {
    if (globalThis.navigator?.locks) {
      t.skip('this Node has Web Locks: the default shares a socket between clients')
      return
    }
    const client = new BroadcastClient(server.wsUrl)
    clients.push(client)
    assert.equal(client.shared, false)
    client.connect()
    await connected(client)
    assert.equal(client.role, 'solo')
  })

  it('subscribes and receives an event published through POST /publish', async () => {
    const { client } = newClient({ clientId: 'node-1' })
    const channel = uniqueChannel('integration-test')
    client.connect()
    const { received, unsubscribe } = record(client, channel)
    await waitFor(() => received.acks.length === 1, 10_000, 'the subscription to be acked')
    assert.equal(received.acks[0].seq, 0)

    const answer = await publish(server.httpUrl, {
      channel, event: 'test_event', payload: { message: 'hello', n: [1, 2] }, origin: 'node-1',
    })
    await waitFor(() => received.events.length === 1, 10_000, 'the event')
    const [event] = received.events
    assert.equal(event.channel, channel)
    assert.equal(event.event, 'test_event')
    assert.deepEqual(event.payload, { message: 'hello', n: [1, 2] })
    assert.equal(event.seq, 1)
    assert.equal(event.seq, answer.seq)
    assert.equal(event.epoch, answer.epoch)
    assert.equal(event.id, answer.id)
    assert.equal(event.origin, 'node-1')
    assert.equal(typeof event.ts, 'number')

    await publish(server.httpUrl, { channel, event: 'second', payload: null })
    await waitFor(() => received.events.length === 2, 10_000, 'the second event')
    assert.deepEqual(received.seqs, [1, 2])
    assert.deepEqual(client.position(channel), { seq: 2, epoch: answer.epoch })
    assert.deepEqual(received.losses, [])
    assert.deepEqual(received.errors, [])
    unsubscribe()
  })

  it('reconnects after disconnect()/connect() and recovers what was published meanwhile', async () => {
    const { client, states } = newClient()
    const channel = uniqueChannel('reconnect')
    const { received } = record(client, channel)
    client.connect()
    await waitFor(() => received.acks.length === 1, 10_000, 'the subscription to be acked')
    await publish(server.httpUrl, { channel, event: 'before', payload: 1 })
    await waitFor(() => received.events.length === 1, 10_000, 'the first event')

    client.disconnect()
    assert.equal(client.state, ClientState.DISCONNECTED)
    await publish(server.httpUrl, { channel, event: 'while.away', payload: 2 })
    await publish(server.httpUrl, { channel, event: 'while.away', payload: 3 })

    client.connect()
    await connected(client)
    await waitFor(() => received.events.length === 3, 10_000, () => `the missed events (seqs ${received.seqs})`)
    assert.equal(received.acks.length, 2)
    assert.equal(received.acks[1].since, 1)
    assert.equal(received.acks[1].recovered, true)
    await publish(server.httpUrl, { channel, event: 'after', payload: 4 })
    await waitFor(() => received.events.length === 4, 10_000, 'the event after the reconnection')

    received.check(4)
    assert.deepEqual(received.events.map((event) => event.payload), [1, 2, 3, 4])
    assert.deepEqual(received.losses, [])
    assert.deepEqual(states, ['connecting', 'connected', 'disconnected', 'connecting', 'connected'])
  })
})
