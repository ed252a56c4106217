// The pure policies: backoff and jitter bounds, close codes, names, event matching.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { backoff, eventMatcher, isChannelName, isEventName, shouldReconnect } from '../../broadcast_cli/static/broadcast.js'

function take (generator, n) {
  const values = []
  for (let i = 0; i < n; i++) values.push(generator.next().value)
  return values
}

describe('backoff', () => {
  it('draws the first delay from [initial / 2, initial]', () => {
    assert.equal(take(backoff({ initial: 100, random: () => 0 }), 1)[0], 50)
    assert.equal(take(backoff({ initial: 100, random: () => 0.999999 }), 1)[0] <= 100, true)
    assert.ok(take(backoff({ initial: 100, random: () => 0.999999 }), 1)[0] > 99.9)
  })

  it('then draws uniformly below an exponentially growing ceiling, capped at the maximum (full jitter)', () => {
    const ceilings = take(backoff({ initial: 100, maximum: 1000, factor: 2, random: () => 1 }), 7).slice(1)
    assert.deepEqual(ceilings, [200, 400, 800, 1000, 1000, 1000])
    const floors = take(backoff({ initial: 100, maximum: 1000, factor: 2, random: () => 0 }), 7).slice(1)
    assert.deepEqual(floors, [0, 0, 0, 0, 0, 0])
  })

  it('stays within its bounds for any random draw', () => {
    let seed = 42
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const delays = take(backoff({ initial: 100, maximum: 5000, factor: 3, random }), 200)
    assert.ok(delays[0] >= 50 && delays[0] <= 100)
    let ceiling = 100
    for (const delay of delays.slice(1)) {
      ceiling = Math.min(5000, ceiling * 3)
      assert.ok(delay >= 0 && delay <= ceiling, `${delay} outside [0, ${ceiling}]`)
    }
  })

  it('refuses parameters that make no sense', () => {
    assert.throws(() => backoff({ initial: 0 }).next(), RangeError)
    assert.throws(() => backoff({ initial: 100, maximum: 50 }).next(), RangeError)
    assert.throws(() => backoff({ factor: 0.5 }).next(), RangeError)
  })
})

describe('shouldReconnect', () => {
  it('follows the close-code table of protocol v1', () => {
    for (const code of [1000, 1001, 1006, 1011, 1012, 1013, 4000, 4008, 4499]) assert.equal(shouldReconnect(code), true, code)
    for (const code of [1002, 1003, 1007, 1008, 1009, 1010, 4500, 4999]) assert.equal(shouldReconnect(code), false, code)
  })
})

describe('isChannelName', () => {
  it('accepts the naming rule and nothing else', () => {
    for (const name of ['orders', 'users.42', 'tenant-7:orders', 'a_b', 'x'.repeat(128)]) assert.equal(isChannelName(name), true)
    for (const name of ['', 'a b', 'orders.*', 'é', 'x'.repeat(129), 42, null]) assert.equal(isChannelName(name), false)
  })
})

describe('isEventName', () => {
  it('accepts the channel naming rule and nothing else', () => {
    for (const name of ['order.created', 'created', 'test_event', 'v2:order-paid', 'x'.repeat(128)]) assert.equal(isEventName(name), true)
    for (const name of ['', 'bad name', 'order/created', 'order.*', 'é', 'tab\t', 'x'.repeat(129), 42, null, undefined]) {
      assert.equal(isEventName(name), false, String(name))
    }
  })
})

describe('eventMatcher', () => {
  it('matches exact names and prefixes written with a trailing *', () => {
    const matches = eventMatcher(['order.created', 'user.*'])
    assert.equal(matches('order.created'), true)
    assert.equal(matches('order.updated'), false)
    assert.equal(matches('user.renamed'), true)
    assert.equal(matches('users'), false)
  })

  it('matches everything without a list', () => {
    assert.equal(eventMatcher(undefined)('anything'), true)
  })
})
