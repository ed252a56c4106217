/**
 * Fakes of what the browser client takes from the browser — WebSocket,
 * BroadcastChannel, Web Locks, timers — and a small protocol-v1 server, so that
 * the client's logic runs deterministically under `node --test`.
 *
 * A `World` is one browser origin: tabs share its lock manager and message bus;
 * `world.kill(tab)` closes a tab as a browser would (its locks are released, its
 * channels and sockets closed, its callbacks never called again). Nothing is
 * delivered until the test calls `await world.settle()`, and no timer fires
 * until it calls `world.clock.advance(ms)`.
 */

/** Timers that only fire when the test advances the clock. */
export class FakeClock {
  now = 0
  #nextId = 1
  /** @type {Map<number, {at: number, callback: () => void}>} */
  timers = new Map()

  setTimeout = (callback, ms, tab = null) => {
    const id = this.#nextId++
    this.timers.set(id, { at: this.now + Math.max(0, ms), callback, ms, tab })
    return id
  }

  /** Forget the timers of a closed tab. */
  kill (tab) {
    for (const [id, timer] of [...this.timers]) if (timer.tab === tab) this.timers.delete(id)
  }

  clearTimeout = (id) => {
    this.timers.delete(id)
  }

  /** The delays (ms) of the pending timers, in creation order. */
  pending () {
    return [...this.timers.values()].map((timer) => timer.ms)
  }

  /** Move time forward, firing due timers in order. */
  advance (ms) {
    const end = this.now + ms
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])
      if (due.length === 0) break
      const [id, timer] = due[0]
      this.timers.delete(id)
      this.now = timer.at
      timer.callback()
    }
    this.now = end
  }
}

function abortError () {
  const error = new Error('the request was aborted')
  error.name = 'AbortError'
  return error
}

/** The Web Locks API of one origin, with locks owned by tabs. */
export class FakeLocks {
  /** @type {Map<string, string>} lock name → owner tab */
  held = new Map()
  /** @type {Map<string, Array<any>>} */
  queues = new Map()

  /** The `navigator.locks` of `tab`. */
  view (tab) {
    return { request: (name, options, callback) => this.request(tab, name, options, callback) }
  }

  request (tab, name, options, callback) {
    if (typeof options === 'function') [options, callback] = [{}, options]
    return new Promise((resolve, reject) => {
      const signal = options?.signal
      if (signal?.aborted) return reject(abortError())
      const request = { tab, callback, resolve, reject }
      const queue = this.queues.get(name) ?? []
      this.queues.set(name, queue)
      queue.push(request)
      signal?.addEventListener('abort', () => {
        const index = queue.indexOf(request)
        if (index >= 0) {
          queue.splice(index, 1)
          reject(abortError())
        }
      })
      this.#grant(name)
    })
  }

  #grant (name) {
    const queue = this.queues.get(name) ?? []
    if (this.held.has(name) || queue.length === 0) return
    const request = queue.shift()
    this.held.set(name, request.tab)
    const token = {}
    request.token = token
    this.#tokens.set(name, token)
    queueMicrotask(async () => {
      let result
      try {
        result = await request.callback({ name })
      } catch (error) {
        request.reject(error)
      }
      if (this.#tokens.get(name) === token) this.#release(name) // not already released by kill()
      request.resolve(result)
    })
  }

  #tokens = new Map()

  #release (name) {
    this.held.delete(name)
    this.#tokens.delete(name)
    this.#grant(name)
  }

  /** The tab is gone: its queued requests vanish, its locks are released. */
  kill (tab) {
    for (const queue of this.queues.values()) {
      for (let i = queue.length - 1; i >= 0; i--) if (queue[i].tab === tab) queue.splice(i, 1)
    }
    for (const [name, owner] of [...this.held]) if (owner === tab) this.#release(name)
  }
}

/** The BroadcastChannels of one origin: messages wait in a queue until `flush()`. */
export class FakeBus {
  /** @type {Set<any>} */
  channels = new Set()
  /** @type {Array<{target: any, data: any}>} */
  queue = []
  /** Every message posted, for assertions. */
  log = []

  /** The `BroadcastChannel` class of `tab`. */
  classFor (tab) {
    const bus = this
    return class FakeBroadcastChannel {
      onmessage = null
      closed = false
      constructor (name) {
        this.name = name
        this.tab = tab
        bus.channels.add(this)
      }

      postMessage (data) {
        if (this.closed) throw new Error('InvalidStateError: the channel is closed')
        const copy = structuredClone(data)
        bus.log.push({ tab, data: copy })
        for (const target of bus.channels) {
          if (target !== this && target.name === this.name) bus.queue.push({ target, data: structuredClone(copy) })
        }
      }

      close () {
        this.closed = true
        bus.channels.delete(this)
      }
    }
  }

  /** Deliver queued messages; returns how many. */
  flush () {
    let count = 0
    while (this.queue.length > 0) {
      const { target, data } = this.queue.shift()
      if (target.closed) continue
      count++
      target.onmessage?.({ data })
    }
    return count
  }

  kill (tab) {
    for (const channel of [...this.channels]) if (channel.tab === tab) channel.close()
  }
}

/** A WebSocket whose server side the test (or a FakeServer) plays. */
export class FakeWebSocket {
  readyState = 0
  onopen = null
  onmessage = null
  onclose = null
  onerror = null
  /** Parsed frames the client sent. */
  sent = []
  closedByClient = false

  constructor (world, tab, url, protocols) {
    this.world = world
    this.tab = tab
    this.url = url
    this.protocols = protocols
  }

  send (text) {
    if (this.readyState !== 1) throw new Error('InvalidStateError: not open')
    const frame = JSON.parse(text)
    this.sent.push(frame)
    this.server?.handle(this, frame)
  }

  close () {
    this.closedByClient = true
    if (this.readyState < 2) this.readyState = 2
    this.server?.detach(this)
  }

  // -- the server's side --

  accept () {
    this.readyState = 1
    this.onopen?.({})
  }

  deliver (data) {
    this.onmessage?.({ data: typeof data === 'string' ? data : JSON.stringify(data) })
  }

  drop (code = 1006) {
    this.readyState = 3
    this.server?.detach(this)
    this.onclose?.({ code, reason: '' })
  }

  /** The `subscribe` requests sent. */
  subscribes () {
    return this.sent.filter((frame) => 'subscribe' in frame)
  }
}

/** A protocol-v1 server with per-channel history, enough to check recovery. */
export class FakeServer {
  epoch = 'e1'
  /** @type {Map<string, Array<any>>} */
  history = new Map()
  /** @type {Map<FakeWebSocket, Set<string>>} */
  subscribers = new Map()
  historySize = Infinity

  attach (ws) {
    ws.server = this
    this.subscribers.set(ws, new Set())
    ws.accept()
  }

  detach (ws) {
    this.subscribers.delete(ws)
  }

  seq (channel) {
    const events = this.history.get(channel) ?? []
    return events.length === 0 ? 0 : events[events.length - 1].seq
  }

  publish (channel, event = 'e', payload = null, origin = undefined) {
    const events = this.history.get(channel) ?? []
    this.history.set(channel, events)
    const message = { channel, event, payload, seq: this.seq(channel) + 1, epoch: this.epoch, id: `m${Math.random()}`, ts: 0 }
    if (origin !== undefined) message.origin = origin
    events.push(message)
    while (events.length > this.historySize) events.shift()
    for (const [ws, channels] of this.subscribers) if (channels.has(channel)) ws.deliver(message)
    return message
  }

  /** Lose every channel's history (an in-memory server restarting). */
  reset (epoch) {
    this.epoch = epoch
    this.history.clear()
  }

  handle (ws, frame) {
    const channels = this.subscribers.get(ws)
    if (channels === undefined) return
    if ('unsubscribe' in frame) {
      for (const name of frame.unsubscribe) channels.delete(name)
      if (frame.id !== undefined) ws.deliver({ type: 'ack', id: frame.id })
      return
    }
    const results = {}
    const replays = []
    for (const item of frame.subscribe) {
      const { channel, since, epoch } = typeof item === 'string' ? { channel: item } : item
      const seq = this.seq(channel)
      const already = channels.has(channel)
      channels.add(channel)
      results[channel] = { seq, epoch: this.epoch }
      if (since === undefined || already) continue
      const events = this.history.get(channel) ?? []
      const oldest = events.length > 0 ? events[0].seq : seq + 1
      const recovered = (epoch === undefined || epoch === this.epoch) && since <= seq && since + 1 >= oldest
      results[channel].recovered = recovered
      if (recovered) replays.push(...events.filter((event) => event.seq > since))
    }
    ws.deliver({ type: 'ack', id: frame.id, channels: results })
    for (const event of replays) ws.deliver(event)
  }
}

/** One browser origin: tabs, a clock, locks, a message bus, and optionally a server that accepts sockets. */
export class World {
  clock = new FakeClock()
  locks = new FakeLocks()
  bus = new FakeBus()
  /** @type {FakeWebSocket[]} */
  sockets = []
  /** @type {FakeServer | null} */
  server = null
  random = () => 0.5
  errors = []

  constructor ({ server = true } = {}) {
    if (server) this.server = new FakeServer()
  }

  /** The `environment` option of a client in `tab`. */
  env (tab, { locks = true, broadcastChannel = true } = {}) {
    const world = this
    return {
      WebSocket: class extends FakeWebSocket {
        constructor (url, protocols) {
          super(world, tab, url, protocols)
          world.sockets.push(this)
        }
      },
      BroadcastChannel: broadcastChannel ? this.bus.classFor(tab) : null,
      locks: locks ? this.locks.view(tab) : null,
      random: () => this.random(),
      now: () => this.clock.now,
      setTimeout: (callback, ms) => this.clock.setTimeout(callback, ms, tab),
      clearTimeout: this.clock.clearTimeout,
      reportError: (error) => this.errors.push(error),
    }
  }

  /** The sockets not closed, optionally of one tab. */
  openSockets (tab) {
    return this.sockets.filter((ws) => ws.readyState < 2 && (tab === undefined || ws.tab === tab))
  }

  /** Deliver everything pending: lock grants, channel messages, new sockets (accepted by the server). */
  async settle () {
    for (let round = 0; round < 1000; round++) {
      await new Promise((resolve) => setImmediate(resolve))
      let busy = this.bus.flush() > 0
      if (this.server !== null) {
        for (const ws of this.sockets) {
          if (ws.readyState === 0 && !ws.closedByClient && ws.server === undefined) {
            this.server.attach(ws)
            busy = true
          }
        }
      }
      if (!busy) {
        await new Promise((resolve) => setImmediate(resolve))
        if (this.bus.queue.length === 0) return
      }
    }
    throw new Error('the world did not settle')
  }

  /** Close `tab` as a browser does when a tab is closed. */
  kill (tab) {
    this.locks.kill(tab)
    this.bus.kill(tab)
    this.clock.kill(tab)
    for (const ws of this.sockets) {
      if (ws.tab === tab && ws.readyState < 2) {
        ws.readyState = 3
        ws.server?.detach(ws)
      }
    }
  }
}
