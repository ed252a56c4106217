// invalidateOn: matching events invalidate, the tab's own echo does not,
// and a loss (recovered: false) invalidates everything.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { BroadcastClient, invalidateOn } from '../../broadcast_cli/static/broadcast.js'
import { World } from './fakes.mjs'

const URL = 'ws://127.0.0.1:8000/ws/broadcast'

async function setUp (rule = {}) {
  const world = new World()
  const client = new BroadcastClient(URL, { environment: world.env('t1'), clientId: 'me' })
  const other = new BroadcastClient(URL, { environment: world.env('t2'), clientId: 'other-tab' })
  const calls = []
  const stop = invalidateOn(client, { channel: 'orders', events: ['order.created', 'order.pending'], keys: [['orders']], ...rule },
    (keys, cause) => calls.push({ keys, event: cause.event ?? null, recovered: cause.recovered }))
  client.connect()
  other.connect()
  await world.settle()
  return { world, client, other, calls, stop }
}

describe('invalidateOn', () => {
  it('invalidates the keys on matching events only', async () => {
    const { world, calls } = await setUp()
    world.server.publish('orders', 'order.created', {}, 'someone')
    world.server.publish('orders', 'order.shipped', {}, 'someone')
    world.server.publish('orders', 'order.created')
    await world.settle()
    assert.deepEqual(calls, [
      { keys: [['orders']], event: 'order.created', recovered: undefined },
      { keys: [['orders']], event: 'order.created', recovered: undefined },
    ])
  })

  it('ignores the echo of its own changes (origin), unless told not to', async () => {
    const { world, calls } = await setUp()
    world.server.publish('orders', 'order.created', {}, 'me')
    await world.settle()
    assert.deepEqual(calls, [])
    const again = await setUp({ ignoreOwn: false })
    again.world.server.publish('orders', 'order.created', {}, 'me')
    await again.world.settle()
    assert.equal(again.calls.length, 1)
  })

  it('invalidates on local events of other tabs, before the server says anything', async () => {
    const { world, other, calls } = await setUp()
    other.emitLocal('orders', 'order.pending', { id: 'x' })
    await world.settle()
    assert.deepEqual(calls, [{ keys: [['orders']], event: 'order.pending', recovered: undefined }])
  })

  it('invalidates everything when messages were lost (recovered: false)', async () => {
    const { world, calls } = await setUp({ events: ['nothing.matches'] })
    world.server.publish('orders')
    await world.settle()
    world.openSockets()[0].drop(1012)
    world.server.reset('e2')
    world.clock.advance(100)
    await world.settle()
    assert.deepEqual(calls, [{ keys: [['orders']], event: null, recovered: false }])
  })

  it('matches every event without a list, and stops when asked', async () => {
    const { world, calls, stop } = await setUp({ events: undefined })
    world.server.publish('orders', 'anything', {}, 'x')
    await world.settle()
    stop()
    world.server.publish('orders', 'anything', {}, 'x')
    await world.settle()
    assert.equal(calls.length, 1)
  })

  it('refuses a rule without keys or a function', () => {
    const client = new BroadcastClient(URL, { environment: new World().env('t1') })
    assert.throws(() => invalidateOn(client, { channel: 'orders' }, () => {}), TypeError)
    assert.throws(() => invalidateOn(client, { channel: 'orders', keys: [] }, null), TypeError)
  })
})
