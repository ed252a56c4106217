// The two pure tables: the socket holder's (reference counts, resubscription,
// ack routing) and each tab's (dedup, gaps, epochs, what an ack means).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { RecoveryReason, SocketTable, TabTable } from '../../broadcast_cli/static/broadcast.js'

const parse = (frames) => frames.map((frame) => JSON.parse(frame.text))

function entry (channel) {
  return { channel, callback: () => {}, onUnrecovered: undefined, onError: undefined, active: true }
}

describe('SocketTable', () => {
  it('sends nothing until a connection opens, then ONE subscribe with every position', () => {
    const table = new SocketTable()
    assert.deepEqual(table.want('t1', 'orders', { seq: 7, epoch: 'e1' }).frames, [])
    assert.deepEqual(table.want('t1', 'users', null).frames, [])
    const frames = parse(table.opened())
    assert.deepEqual(frames, [{ subscribe: [{ channel: 'orders', since: 7, epoch: 'e1' }, 'users'], id: 1 }])
  })

  it('counts references across tabs: subscribes once, unsubscribes with the last', () => {
    const table = new SocketTable()
    table.opened()
    assert.equal(parse(table.want('t1', 'orders').frames).length, 1)
    assert.deepEqual(table.want('t2', 'orders').frames, [])
    assert.deepEqual(table.tabsOf('orders').sort(), ['t1', 't2'])
    assert.deepEqual(table.unwant('t1', 'orders'), [])
    assert.deepEqual(parse(table.unwant('t2', 'orders')), [{ unsubscribe: ['orders'], id: 2 }])
    assert.deepEqual(table.channels(), [])
  })

  it('routes an ack to the tabs that wait for it, and answers later tabs at once', () => {
    const table = new SocketTable()
    table.opened()
    const [request] = parse(table.want('t1', 'orders').frames)
    table.want('t2', 'orders')
    const outcome = table.receive({ type: 'ack', id: request.id, channels: { orders: { seq: 4, epoch: 'e1' } } })
    assert.equal(outcome.kind, 'acks')
    assert.deepEqual(outcome.acks, [{ to: ['t1', 't2'], ack: { channel: 'orders', seq: 4, epoch: 'e1', since: null } }])
    const later = table.want('t3', 'orders', null)
    assert.deepEqual(later.frames, [])
    assert.deepEqual(later.acks, [{ to: ['t3'], ack: { channel: 'orders', seq: 4, epoch: 'e1', since: null } }])
  })

  it('resubscribes from an older position when a lagging tab joins, so that it misses nothing', () => {
    const table = new SocketTable()
    table.opened()
    const [request] = parse(table.want('t1', 'orders', { seq: 10, epoch: 'e1' }).frames)
    table.receive({ type: 'ack', id: request.id, channels: { orders: { seq: 12, epoch: 'e1', recovered: true } } })
    table.receive({ channel: 'orders', event: 'e', payload: null, seq: 11, epoch: 'e1' })
    table.receive({ channel: 'orders', event: 'e', payload: null, seq: 12, epoch: 'e1' })
    assert.deepEqual(table.position('orders'), { seq: 12, epoch: 'e1' })
    const result = table.want('t2', 'orders', { seq: 8, epoch: 'e1' })
    assert.deepEqual(result.acks, [])
    assert.deepEqual(parse(result.frames), [
      { unsubscribe: ['orders'], id: 2 },
      { subscribe: [{ channel: 'orders', since: 8, epoch: 'e1' }], id: 3 },
    ])
    const outcome = table.receive({ type: 'ack', id: 3, channels: { orders: { seq: 12, epoch: 'e1', recovered: true } } })
    assert.deepEqual(outcome.acks, [{ to: ['t2'], ack: { channel: 'orders', seq: 12, epoch: 'e1', recovered: true, since: 8 } }])
  })

  it('answers a tab at once when the channel is acked at its position or behind it', () => {
    const table = new SocketTable()
    table.opened()
    table.want('t1', 'orders')
    table.receive({ type: 'ack', id: 1, channels: { orders: { seq: 5, epoch: 'e1' } } })
    const same = table.want('t2', 'orders', { seq: 5, epoch: 'e1' })
    assert.deepEqual(same.frames, [])
    assert.deepEqual(same.acks[0].ack, { channel: 'orders', seq: 5, epoch: 'e1', since: 5, recovered: true })
    const otherEpoch = table.want('t3', 'orders', { seq: 9, epoch: 'old' })
    assert.equal(otherEpoch.acks[0].ack.recovered, false)
  })

  it('ignores the ack of a request that was superseded', () => {
    const table = new SocketTable()
    table.opened()
    table.want('t1', 'orders') // id 1
    table.want('t2', 'orders', { seq: 3, epoch: 'e1' }) // ids 2 (unsubscribe) and 3
    const first = table.receive({ type: 'ack', id: 1, channels: { orders: { seq: 6, epoch: 'e1' } } })
    assert.deepEqual(first.acks, [])
    const third = table.receive({ type: 'ack', id: 3, channels: { orders: { seq: 6, epoch: 'e1', recovered: true } } })
    assert.deepEqual(third.acks[0].to.sort(), ['t1', 't2'])
  })

  it('after a lost connection, every tab waits and the next subscribe starts from the last seq seen', () => {
    const table = new SocketTable()
    table.opened()
    table.want('t1', 'orders')
    table.want('t2', 'orders')
    table.receive({ type: 'ack', id: 1, channels: { orders: { seq: 0, epoch: 'e1' } } })
    table.receive({ channel: 'orders', event: 'e', payload: 1, seq: 1, epoch: 'e1' })
    table.lost()
    assert.deepEqual(table.unwant('t1', 'orders'), [])
    const [frame] = parse(table.opened())
    assert.deepEqual(frame.subscribe, [{ channel: 'orders', since: 1, epoch: 'e1' }])
    const outcome = table.receive({ type: 'ack', id: frame.id, channels: { orders: { seq: 1, epoch: 'e1', recovered: true } } })
    assert.deepEqual(outcome.acks[0].to, ['t2'])
  })

  it('drops a refused channel and reports it to its tabs; retries backend_unavailable', () => {
    const table = new SocketTable()
    table.opened()
    table.want('t1', 'bad')
    const refused = table.receive({ type: 'error', id: 1, code: 'too_many_subscriptions', message: 'no' })
    assert.deepEqual(refused.errors, [{ to: ['t1'], error: { channel: 'bad', code: 'too_many_subscriptions', message: 'no' } }])
    assert.deepEqual(table.channels(), [])
    table.want('t1', 'orders') // id 2
    const unavailable = table.receive({ type: 'error', id: 2, code: 'backend_unavailable', message: 'redis' })
    assert.deepEqual(unavailable.retry, ['orders'])
    assert.deepEqual(parse(table.retry(['orders'], 2)), [{ subscribe: ['orders'], id: 3 }])
  })

  it('ignores frames that are not for it', () => {
    const table = new SocketTable()
    assert.equal(table.receive('text').kind, 'ignored')
    assert.equal(table.receive({ type: 'ack', id: 99 }).kind, 'ignored')
    assert.equal(table.receive({ type: 'pong' }).kind, 'ignored')
    assert.equal(table.receive({ channel: 'orders', event: 'e', seq: 1, epoch: 'e1' }).kind, 'ignored')
    assert.equal(table.receive({ channel: 'orders', seq: 'x' }).kind, 'ignored')
  })
})

describe('TabTable', () => {
  function ready (seq = 0, epoch = 'e1') {
    const table = new TabTable()
    const handler = entry('orders')
    assert.equal(table.add(handler), true)
    table.applyAck({ channel: 'orders', seq, epoch, since: null })
    return { table, handler }
  }

  const event = (seq, epoch = 'e1') => ({ channel: 'orders', event: 'e', payload: seq, seq, epoch })

  it('delivers in order and drops duplicates', () => {
    const { table, handler } = ready()
    assert.deepEqual(table.applyEvent(event(1)).deliver, [handler])
    assert.equal(table.applyEvent(event(1)).duplicate, true)
    assert.deepEqual(table.applyEvent(event(2)).deliver, [handler])
    assert.deepEqual(table.position('orders'), { seq: 2, epoch: 'e1' })
  })

  it('drops events of a channel not acked yet (after a reconnection or a change of leader)', () => {
    const { table } = ready()
    table.reset()
    assert.deepEqual(table.applyEvent(event(1)).deliver, [])
  })

  it('reports a gap and a new epoch before delivering', () => {
    const { table } = ready()
    table.applyEvent(event(1))
    const gap = table.applyEvent(event(4))
    assert.equal(gap.loss.reason, RecoveryReason.GAP)
    assert.deepEqual(gap.loss.previous, { seq: 1, epoch: 'e1' })
    assert.deepEqual(gap.loss.position, { seq: 3, epoch: 'e1' })
    assert.equal(gap.loss.recovered, false)
    assert.equal(gap.deliver.length, 1)
    assert.equal(table.applyEvent(event(1, 'e2')).loss.reason, RecoveryReason.EPOCH_CHANGED)
  })

  it('keeps its position after recovered: true (the replay follows)', () => {
    const { table } = ready(5)
    table.reset()
    const { loss } = table.applyAck({ channel: 'orders', seq: 9, epoch: 'e1', recovered: true, since: 5 })
    assert.equal(loss, null)
    assert.deepEqual(table.position('orders'), { seq: 5, epoch: 'e1' })
    assert.equal(table.applyEvent(event(6)).deliver.length, 1)
  })

  it('reports recovered: false and continues from the ack', () => {
    const { table } = ready(5)
    table.reset()
    const { loss } = table.applyAck({ channel: 'orders', seq: 90, epoch: 'e2', recovered: false, since: 5 })
    assert.equal(loss.reason, RecoveryReason.NOT_RECOVERED)
    assert.deepEqual(loss.position, { seq: 90, epoch: 'e2' })
    assert.deepEqual(loss.previous, { seq: 5, epoch: 'e1' })
    assert.deepEqual(table.position('orders'), { seq: 90, epoch: 'e2' })
  })

  it('treats an ack ahead of its position, without recovery, as a loss', () => {
    const { table } = ready(5)
    table.reset()
    assert.equal(table.applyAck({ channel: 'orders', seq: 8, epoch: 'e1', since: null }).loss.reason, RecoveryReason.GAP)
    const { table: again } = ready(5)
    again.reset()
    assert.equal(again.applyAck({ channel: 'orders', seq: 5, epoch: 'e1', since: null }).loss, null)
  })

  it('counts handlers: the first adds the channel, the last removes it', () => {
    const table = new TabTable()
    const a = entry('orders')
    const b = entry('orders')
    assert.equal(table.add(a), true)
    assert.equal(table.add(b), false)
    assert.equal(table.remove(a), false)
    assert.equal(table.remove(a), false)
    assert.equal(table.remove(b), true)
    assert.deepEqual(table.channels(), [])
  })
})
