// One socket per browser: leader election with Web Locks, relay over
// BroadcastChannel, reference counts across tabs, takeover without loss,
// local events, and the fallback to one socket per tab.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { BroadcastClient, ClientState } from '../../broadcast_cli/static/broadcast.js'
import { World } from './fakes.mjs'

const URL = 'ws://127.0.0.1:8000/ws/broadcast'

/** Open tabs `names` in `world`, each with a connected client recording what it gets on `channel`. */
async function openTabs (world, names, { channel = 'orders', env = {} } = {}) {
  const tabs = {}
  for (const name of names) {
    const client = new BroadcastClient(URL, { environment: world.env(name, env) })
    const tab = { name, client, seqs: [], events: [], losses: [] }
    if (channel !== null) {
      tab.unsubscribe = client.subscribe(channel, (event) => {
        tab.events.push(event)
        if (event.seq !== undefined) tab.seqs.push(event.seq)
      }, { onUnrecovered: (info) => tab.losses.push(info) })
    }
    client.connect()
    tabs[name] = tab
    await world.settle()
  }
  return tabs
}

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('one socket shared by the tabs', () => {
  it('elects one leader that holds the only socket and relays events to every tab', async () => {
    const world = new World()
    const tabs = await openTabs(world, ['t1', 't2', 't3'])
    assert.deepEqual(Object.values(tabs).map((tab) => tab.client.role), ['leader', 'follower', 'follower'])
    assert.equal(world.openSockets().length, 1)
    assert.equal(world.openSockets()[0].tab, 't1')
    for (const tab of Object.values(tabs)) assert.equal(tab.client.state, ClientState.CONNECTED)
    for (let i = 0; i < 3; i++) world.server.publish('orders', 'order.created', { n: i })
    await world.settle()
    for (const tab of Object.values(tabs)) assert.deepEqual(tab.seqs, [1, 2, 3], tab.name)
    assert.deepEqual(tabs.t2.events[0].payload, { n: 0 })
  })

  it('subscribes a channel while any tab wants it, and unsubscribes after the last one', async () => {
    const world = new World()
    const tabs = await openTabs(world, ['t1', 't2'], { channel: null })
    const ws = world.openSockets()[0]
    const got = []
    const stopFollower = tabs.t2.client.subscribe('users', (event) => got.push(['t2', event.seq]))
    await world.settle()
    assert.deepEqual(ws.subscribes().map((frame) => frame.subscribe), [['users']])
    const stopLeader = tabs.t1.client.subscribe('users', (event) => got.push(['t1', event.seq]))
    await world.settle()
    assert.equal(ws.subscribes().length, 1) // no second subscribe: reference counted
    world.server.publish('users')
    await world.settle()
    assert.deepEqual(got.sort(), [['t1', 1], ['t2', 1]])
    stopLeader()
    await world.settle()
    assert.equal(ws.sent.filter((frame) => 'unsubscribe' in frame).length, 0)
    world.server.publish('users')
    await world.settle()
    assert.deepEqual(got.filter(([tab]) => tab === 't2').map(([, seq]) => seq), [1, 2])
    stopFollower()
    await world.settle()
    assert.deepEqual(ws.sent.at(-1).unsubscribe, ['users'])
  })

  it('when the leader tab closes, the next takes over and resumes from the last seq: every seq exactly once', async () => {
    const world = new World()
    const tabs = await openTabs(world, ['t1', 't2', 't3'])
    for (let i = 0; i < 5; i++) world.server.publish('orders')
    await world.settle()
    world.kill('t1') // the leader tab is closed
    for (let i = 0; i < 5; i++) world.server.publish('orders') // nobody is connected now
    await world.settle()
    assert.equal(tabs.t2.client.role, 'leader')
    const [ws] = world.openSockets()
    assert.equal(ws.tab, 't2')
    assert.deepEqual(ws.subscribes()[0].subscribe, [{ channel: 'orders', since: 5, epoch: 'e1' }])
    for (let i = 0; i < 5; i++) world.server.publish('orders')
    await world.settle()
    assert.deepEqual(tabs.t2.seqs, range(1, 15))
    assert.deepEqual(tabs.t3.seqs, range(1, 15))
    assert.deepEqual([...tabs.t2.losses, ...tabs.t3.losses], [])
    assert.equal(world.openSockets().length, 1)
  })

  it('a tab that lagged behind at the takeover is served from its own position', async () => {
    const world = new World()
    const tabs = await openTabs(world, ['t1', 't2', 't3'])
    for (let i = 0; i < 3; i++) world.server.publish('orders')
    await world.settle()
    for (let i = 0; i < 2; i++) world.server.publish('orders')
    world.bus.queue = world.bus.queue.filter(({ target }) => target.tab !== 't3') // relays to t3 lost with t1
    world.kill('t1')
    await world.settle()
    world.server.publish('orders')
    await world.settle()
    assert.deepEqual(tabs.t2.seqs, range(1, 6))
    assert.deepEqual(tabs.t3.seqs, range(1, 6))
    assert.deepEqual(tabs.t3.losses, [])
    // t3's hello came before the new socket opened: the one subscribe starts from the older position.
    const subscribes = world.openSockets()[0].subscribes()
    assert.deepEqual(subscribes.map((frame) => frame.subscribe), [[{ channel: 'orders', since: 3, epoch: 'e1' }]])
  })

  it('hands the socket over on disconnect() as well', async () => {
    const world = new World()
    const tabs = await openTabs(world, ['t1', 't2'])
    world.server.publish('orders')
    await world.settle()
    const states = []
    tabs.t2.client.onStateChange((state) => states.push(state))
    tabs.t1.client.disconnect()
    world.server.publish('orders')
    await world.settle()
    assert.equal(tabs.t1.client.state, ClientState.DISCONNECTED)
    assert.equal(tabs.t2.client.role, 'leader')
    assert.equal(tabs.t2.client.state, ClientState.CONNECTED)
    world.server.publish('orders')
    await world.settle()
    assert.deepEqual(tabs.t2.seqs, [1, 2, 3])
    assert.deepEqual(tabs.t1.seqs, [1])
    assert.deepEqual(states, ['reconnecting', 'connected']) // never 'disconnected' on the way
  })

  it('drops the channels of a follower that went away (its lock is released)', async () => {
    const world = new World()
    const tabs = await openTabs(world, ['t1', 't2'], { channel: null })
    tabs.t2.client.subscribe('users', () => {})
    await world.settle()
    const ws = world.openSockets()[0]
    assert.deepEqual(ws.subscribes().map((frame) => frame.subscribe), [['users']])
    world.kill('t2')
    await world.settle()
    assert.deepEqual(ws.sent.at(-1).unsubscribe, ['users'])
  })

  it('a follower that disconnects and connects again leaves no stale reference behind', async () => {
    const world = new World()
    const tabs = await openTabs(world, ['t1', 't2'], { channel: null })
    const got = []
    const stop = tabs.t2.client.subscribe('users', (event) => got.push(event.seq))
    await world.settle()
    tabs.t2.client.disconnect()
    tabs.t2.client.connect()
    await world.settle()
    assert.equal(tabs.t2.client.state, ClientState.CONNECTED)
    world.server.publish('users')
    await world.settle()
    assert.deepEqual(got, [1])
    stop()
    await world.settle()
    const ws = world.openSockets()[0]
    assert.deepEqual(ws.sent.at(-1).unsubscribe, ['users'])
    assert.equal(world.server.subscribers.get(ws).has('users'), false)
  })

  it('followers follow the leader\'s connection state, and its reconnection loses nothing', async () => {
    const world = new World()
    const tabs = await openTabs(world, ['t1', 't2'])
    world.server.publish('orders')
    await world.settle()
    world.openSockets()[0].drop(1012)
    await world.settle()
    assert.equal(tabs.t2.client.state, ClientState.RECONNECTING)
    world.server.publish('orders')
    world.clock.advance(100)
    await world.settle()
    assert.equal(tabs.t2.client.state, ClientState.CONNECTED)
    world.server.publish('orders')
    await world.settle()
    assert.deepEqual(tabs.t1.seqs, [1, 2, 3])
    assert.deepEqual(tabs.t2.seqs, [1, 2, 3])
  })

  it('a follower tells the others about a recovered: false', async () => {
    const world = new World()
    const tabs = await openTabs(world, ['t1', 't2'])
    world.server.publish('orders')
    await world.settle()
    world.openSockets()[0].drop(1012)
    world.server.reset('e2')
    world.clock.advance(100)
    await world.settle()
    for (const tab of Object.values(tabs)) assert.equal(tab.losses[0]?.reason, 'not_recovered', tab.name)
  })
})

describe('local events', () => {
  it('reach the other tabs at once, without the server, and not the sender', async () => {
    const world = new World()
    const tabs = await openTabs(world, ['t1', 't2', 't3'])
    assert.equal(tabs.t2.client.emitLocal('orders', 'order.pending', { id: 'x' }), true)
    await world.settle()
    assert.deepEqual(tabs.t2.events, [])
    for (const name of ['t1', 't3']) {
      assert.deepEqual(tabs[name].events, [
        { channel: 'orders', event: 'order.pending', payload: { id: 'x' }, origin: tabs.t2.client.clientId, local: true },
      ])
    }
    assert.equal(world.openSockets()[0].sent.length, 1) // only the subscribe: nothing went to the server
  })

  it('cannot be sent without a BroadcastChannel', async () => {
    const world = new World()
    const client = new BroadcastClient(URL, { environment: world.env('t1', { broadcastChannel: false }) })
    assert.equal(client.emitLocal('orders', 'e'), false)
    client.connect()
    assert.equal(client.emitLocal('orders', 'e'), false)
    assert.throws(() => client.emitLocal('a b', 'e'), TypeError)
    assert.throws(() => client.emitLocal('orders', 'bad name'), { name: 'TypeError', message: /^invalid event name "bad name": an event name is 1 to 128 characters/ })
    assert.throws(() => client.emitLocal('orders', 'x'.repeat(129)), TypeError)
  })
})

describe('fallback', () => {
  it('opens one socket per tab without Web Locks, and local events still reach the other tabs', async () => {
    const world = new World()
    const tabs = await openTabs(world, ['t1', 't2'], { env: { locks: false } })
    assert.deepEqual(Object.values(tabs).map((tab) => tab.client.role), ['solo', 'solo'])
    assert.equal(tabs.t1.client.shared, false)
    assert.equal(world.openSockets().length, 2)
    world.server.publish('orders')
    tabs.t1.client.emitLocal('orders', 'order.pending', {})
    await world.settle()
    assert.deepEqual(tabs.t1.seqs, [1])
    assert.deepEqual(tabs.t2.seqs, [1])
    assert.equal(tabs.t2.events.filter((event) => event.local).length, 1)
  })

  it('opens one socket per tab without BroadcastChannel', async () => {
    const world = new World()
    const tabs = await openTabs(world, ['t1', 't2'], { env: { broadcastChannel: false } })
    assert.equal(world.openSockets().length, 2)
    world.server.publish('orders')
    await world.settle()
    assert.deepEqual(tabs.t2.seqs, [1])
  })
})
