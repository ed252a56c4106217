// A server-side disconnect with recovery: while messages are published at a
// steady pace, the server the browser client (under Node) is connected to is
// stopped — SIGTERM (graceful: close 1012) or SIGKILL (a crash: the socket just
// drops) — and started again on the same port. A second server on the same
// Redis takes the publishes while the first is down; history lives in Redis, so
// the client, reconnecting to the first, recovers with since/epoch and ends with
// every seq exactly once, in order, and no `recovered: false`.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { BroadcastClient, ClientState } from '../../../broadcast_cli/static/broadcast.js'
import { Server, publish, record, scaled, stopAll, uniqueChannel, waitFor } from './harness.mjs'

const MESSAGES = 800
const RATE = 160 // messages per second: 5 s of publishing
const DOWN_AFTER = 150 // messages the client has received when its server goes down
const WHILE_DOWN = 80 // messages published (through the other server) before the first comes back

/**
 * Publish `MESSAGES` messages (payload `{n}`) at `RATE` per second, through `first` while it
 * answers and through `second` otherwise. Falls behind, never ahead, when a server is slower.
 * Counts in `tally` where each went; stops early when `tally.abandoned` (the test failed).
 */
async function publishPaced (channel, first, second, tally) {
  const start = Date.now()
  for (let n = 1; n <= MESSAGES && !tally.abandoned; n++) {
    const delay = start + ((n - 1) * 1000) / RATE - Date.now()
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay)) // pacing, not synchronisation
    const message = { channel, event: 'tick', payload: { n } }
    let answer
    if (first.running) {
      try {
        answer = await publish(first.httpUrl, message)
      } catch {
        // Going down, or not listening yet. Had it published the message before it went,
        // the retry gets the next seq and the client must have both: every seq is checked.
      }
    }
    if (answer === undefined) {
      answer = await publish(second.httpUrl, message)
      tally.whileDown++
    } else {
      tally[tally.restarted ? 'afterRestart' : 'beforeStop']++
    }
    tally.acknowledged.push({ n, seq: answer.seq })
  }
}

const ENDINGS = [
  ['SIGTERM (a graceful stop)', (server) => server.stop()],
  ['SIGKILL (a crash)', (server) => server.kill()],
]

for (const [how, end] of ENDINGS) {
  describe(`the server the client is on goes down with ${how} and comes back on its port`, () => {
    it('the client recovers every message, each once, in order', { timeout: scaled(120_000) }, async (t) => {
      const args = ['--history-size', String(MESSAGES)]
      const servers = []
      let client = null
      try {
        const first = await Server.start('first', args)
        servers.push(first)
        const second = await Server.start('second', args)
        servers.push(second)
        client = new BroadcastClient(first.wsUrl, { shared: false, backoff: { initial: 50, maximum: 500 } })
        await scenario(t, client, first, second, how, end)
      } finally {
        client?.disconnect()
        await stopAll(servers)
      }
    })
  })
}

async function scenario (t, client, first, second, how, end) {
  const channel = uniqueChannel('recovery')
  const states = []
  client.onStateChange((state) => states.push(state))
  const { received } = record(client, channel)
  client.connect()
  await waitFor(() => received.acks.length === 1, 10_000, 'the subscription to be acked')

  const tally = { acknowledged: [], beforeStop: 0, whileDown: 0, afterRestart: 0, restarted: false, abandoned: false }
  const publishing = publishPaced(channel, first, second, tally)
  publishing.catch(() => {}) // awaited below; this only keeps a failure from being reported as unhandled meanwhile
  const progress = () => `received ${received.events.length}, published ${tally.acknowledged.length}, client ${client.state}`
  try {
    await waitFor(() => received.events.length >= DOWN_AFTER, 30_000, () => `${DOWN_AFTER} messages: ${progress()}`)
    const status = await end(first)
    if (how.startsWith('SIGTERM')) assert.deepEqual(status, { code: 0, signal: null }, 'a graceful stop exits with 0')
    await waitFor(() => client.state !== ClientState.CONNECTED, 10_000, () => `the client to see the drop: ${progress()}`)
    await waitFor(() => tally.whileDown >= WHILE_DOWN, 30_000, () => `${WHILE_DOWN} messages while down: ${progress()}`)
    await first.start()
    tally.restarted = true
    await waitFor(() => client.state === ClientState.CONNECTED, 20_000, () => `the client to reconnect: ${progress()}`)
  } catch (error) {
    tally.abandoned = true
    throw error
  } finally {
    await publishing
  }

  assert.equal(tally.acknowledged.length, MESSAGES)
  const last = Math.max(...tally.acknowledged.map(({ seq }) => seq))
  await waitFor(() => received.events.length >= last, 30_000, () => `every message (last seq ${last}): ${progress()}`)
  received.check(last)
  for (const { n, seq } of tally.acknowledged) assert.equal(received.events[seq - 1].payload.n, n, `the payload of seq ${seq}`)
  assert.deepEqual(received.losses, [], 'no recovered: false')
  assert.deepEqual(received.errors, [])
  assert.equal(received.acks.length, 2, 'one ack per connection')
  const resubscribed = received.acks[1]
  assert.equal(resubscribed.recovered, true)
  assert.equal(resubscribed.epoch, received.acks[0].epoch)
  assert.deepEqual(states, ['connecting', 'connected', 'reconnecting', 'connected'])
  t.diagnostic(
    `${last} seqs; through the first server ${tally.beforeStop} before it went down and ${tally.afterRestart} ` +
    `after it came back, through the second ${tally.whileDown} meanwhile; resubscribed from seq ${resubscribed.since}`,
  )
}
