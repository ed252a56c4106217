/**
 * The browser client of broadcast-cli: wire protocol v1 (docs/protocol.md) over
 * ONE WebSocket per browser, shared by every tab of an origin.
 *
 * ```js
 * import { BroadcastClient, invalidateOn } from '/client.js'
 *
 * const client = new BroadcastClient('/ws/broadcast')
 * client.connect()
 * const stop = client.subscribe('orders', (event) => console.log(event.seq, event.payload))
 * ```
 *
 * How it is built, from the bottom up:
 *
 * - Pure policies: {@link backoff} (exponential delays with full jitter) and
 *   {@link shouldReconnect} (the close-code table of the protocol).
 * - {@link SocketTable}: what the tab that holds the socket knows — which tabs
 *   want which channel (reference counts), the last position seen per channel,
 *   the requests in flight — and the frames to send. No I/O.
 * - {@link TabTable}: what every tab knows — its handlers, the last position it
 *   delivered per channel — and what to do with an event or an ack: deliver,
 *   drop a duplicate, or report a loss (`recovered: false`). No I/O.
 * - `SocketSession`: one reconnecting WebSocket around a `SocketTable`.
 * - {@link BroadcastClient}: the tabs of an origin elect a leader with the Web
 *   Locks API; the leader runs the `SocketSession` and relays what it receives
 *   to the other tabs over a BroadcastChannel. When the leader tab goes, its
 *   lock is released, the next tab takes over, and resubscribes from the last
 *   `seq` each tab saw: nothing is lost, nothing is delivered twice. Without
 *   Web Locks or BroadcastChannel, each tab has a socket of its own.
 * - {@link invalidateOn}: call an application's cache invalidation on matching
 *   events, ignoring the tab's own echo, and on everything after a loss.
 *
 * Dependency-free; served by `broadcast serve` at `GET /client.js`.
 *
 * @module broadcast-cli
 */

/** The protocol version this client speaks. */
export const PROTOCOL_VERSION = 1

/** The WebSocket subprotocol offered to the server. */
export const SUBPROTOCOL = 'broadcast.v1'

/**
 * The states of a client's connection.
 * @readonly
 * @enum {string}
 */
export const ClientState = Object.freeze({
  /** Not connected and not trying: before `connect()`, after `disconnect()`, or after a close that forbids reconnecting. */
  DISCONNECTED: 'disconnected',
  /** Opening the first connection (retrying with backoff until it succeeds). */
  CONNECTING: 'connecting',
  /** Connected: events flow. */
  CONNECTED: 'connected',
  /** The connection was lost (or the leader tab went): reconnecting with backoff. */
  RECONNECTING: 'reconnecting',
})

/**
 * Why messages of a channel were lost and the application must refetch.
 * @readonly
 * @enum {string}
 */
export const RecoveryReason = Object.freeze({
  /** The server's ack said `recovered: false`: the missed messages left its history. */
  NOT_RECOVERED: 'not_recovered',
  /** A message (or ack) came in a new epoch: the channel's history was reset. */
  EPOCH_CHANGED: 'epoch_changed',
  /** A message skipped one or more `seq` numbers. */
  GAP: 'gap',
})

/** A connection that lasted this long (ms) restarts the backoff from its first delay. */
export const STABLE_AFTER_MS = 2000

const ABNORMAL_CLOSURE = 1006
// The naming rule of channels and events, as broadcast_cli/message.py has it (tests/unit/test_browser_client_rules.py).
const NAME_RE = /^[A-Za-z0-9_.:-]{1,128}$/
const MESSAGE_PREFIX = 'broadcast-cli.v1'

// -- policies -------------------------------------------------------------------

/**
 * Yield reconnection delays in milliseconds, forever.
 *
 * The first delay is drawn from `[initial / 2, initial]`, so that a dropped
 * connection is retried promptly but not instantly; the n-th after it uniformly
 * from `[0, min(maximum, initial * factor ** n)]` ("full jitter"), so that a
 * fleet of clients does not stampede a server that just came back. The same
 * policy as the Python client's `backoff()`.
 *
 * @param {{initial?: number, maximum?: number, factor?: number, random?: () => number}} [options]
 * @returns {Generator<number, never, void>}
 */
/**
 * `url` with `token` as its `token` query parameter (how a connection token goes with the handshake).
 * @param {string} url @param {unknown} token
 * @returns {string}
 */
export function withToken (url, token) {
  if (typeof token !== 'string' || !token) throw new TypeError('a connection token must be a non-empty string')
  const parsed = new URL(url)
  parsed.searchParams.set('token', token)
  return parsed.toString()
}

export function * backoff ({ initial = 100, maximum = 10_000, factor = 2, random = Math.random } = {}) {
  if (!(initial > 0) || !(maximum >= initial) || !(factor >= 1)) {
    throw new RangeError('backoff() needs 0 < initial <= maximum and factor >= 1')
  }
  yield initial * (0.5 + random() / 2)
  let ceiling = initial
  for (;;) {
    ceiling = Math.min(maximum, ceiling * factor)
    yield ceiling * random()
  }
}

/**
 * Whether to reconnect after the connection closed with `code` (protocol.md, "Close codes").
 *
 * Codes that blame the client (1002, 1003, 1007, 1008, 1009, 1010) and the
 * range 4500–4999 would fail again unchanged; everything else is worth a retry.
 *
 * @param {number} code
 * @returns {boolean}
 */
export function shouldReconnect (code) {
  if ([1002, 1003, 1007, 1008, 1009, 1010].includes(code)) return false
  return !(code >= 4500 && code < 5000)
}

/**
 * Whether `name` is a valid channel name: 1 to 128 characters, each an ASCII
 * letter, a digit or one of `_ - . :`.
 *
 * @param {unknown} name
 * @returns {name is string}
 */
export function isChannelName (name) {
  return typeof name === 'string' && NAME_RE.test(name)
}

/**
 * Whether `name` is a valid event name: the channel naming rule, 1 to 128
 * characters, each an ASCII letter, a digit or one of `_ - . :`.
 *
 * @param {unknown} name
 * @returns {name is string}
 */
export function isEventName (name) {
  return typeof name === 'string' && NAME_RE.test(name)
}

/** @param {unknown} value @returns {value is number} */
function isSeq (value) {
  return Number.isInteger(value) && /** @type {number} */ (value) >= 0
}

/**
 * @typedef {{seq: number, epoch: string | null}} Position
 * A position in a channel: its last `seq` in history generation `epoch`
 * (`epoch` is `null` only for a `since` given without one).
 */

/**
 * @typedef {object} BroadcastEvent
 * An event, as the server sends it (or, with `local: true`, as another tab emitted it).
 * @property {string} channel
 * @property {string} event
 * @property {unknown} payload
 * @property {number} [seq] absent on local events
 * @property {string} [epoch] absent on local events
 * @property {string} [id]
 * @property {number} [ts] server time of the publish, ms since the Unix epoch
 * @property {string} [origin] the publisher's client id, when it gave one
 * @property {boolean} [local] true for an event emitted by another tab with `emitLocal()`
 */

/**
 * @typedef {object} RecoveryInfo
 * What `onUnrecovered` receives when messages of a channel were lost: refetch.
 * @property {string} channel
 * @property {false} recovered
 * @property {string} reason one of {@link RecoveryReason}
 * @property {Position} position events after this one are delivered from now on
 * @property {Position | null} previous the last position seen before the loss
 */

/**
 * @typedef {object} SubscriptionError
 * The server's refusal of a subscription (an error frame).
 * @property {string} channel
 * @property {string} code
 * @property {string} message
 */

/**
 * @typedef {object} Ack
 * A subscription's answer, as relayed to the tabs that wait for it.
 * @property {string} channel
 * @property {number | null} seq the channel's position: the events that follow have a greater seq
 * @property {string | null} epoch
 * @property {boolean} [recovered] present when the request carried `since`
 * @property {number | null} since the `since` the request carried
 */

// -- the socket holder's table ---------------------------------------------------

/**
 * @typedef {{id: number, text: string}} Frame
 * A request to send on the socket: its id and its JSON text.
 */

/**
 * @typedef {object} ChannelRecord
 * @property {string} name
 * @property {Set<string>} tabs the tabs that want the channel (its reference count)
 * @property {Set<string>} waiting the tabs that wait for the next ack
 * @property {number | null} seq the last seq seen (or the `since` to ask for)
 * @property {string | null} epoch
 * @property {number | null} since the `since` of the last subscribe sent
 * @property {number | null} requestId the id of the last subscribe sent on this connection
 * @property {boolean} acked
 */

/**
 * The state of the socket holder (the leader tab, or a tab on its own): which
 * tabs want which channel, the last position seen on each, the requests in
 * flight; the frames to send. No I/O: methods return frames, and
 * {@link SocketTable#receive} says what a server frame means.
 *
 * A tab that wants a channel with an older position than the table's (a tab
 * that lagged behind when the leader changed) makes the table unsubscribe and
 * subscribe again from that position: the server replays from there, and each
 * tab drops what it already has.
 */
export class SocketTable {
  /** @type {Map<string, ChannelRecord>} */
  #channels = new Map()
  /** @type {Map<number, {kind: 'subscribe' | 'unsubscribe', channels: string[]}>} */
  #pending = new Map()
  #nextId = 1
  #open = false

  /** Whether a connection is open (returned frames must be sent). */
  get isOpen () {
    return this.#open
  }

  /** The channels that at least one tab wants. @returns {string[]} */
  channels () {
    return [...this.#channels.keys()]
  }

  /** The tabs that want `name`. @param {string} name @returns {string[]} */
  tabsOf (name) {
    return [...(this.#channels.get(name)?.tabs ?? [])]
  }

  /** The last position seen on `name`, or null. @param {string} name @returns {Position | null} */
  position (name) {
    const record = this.#channels.get(name)
    return record && record.seq !== null ? { seq: record.seq, epoch: record.epoch } : null
  }

  /** Whether request `id` still waits for its answer. @param {number} id */
  isPending (id) {
    return this.#pending.has(id)
  }

  /**
   * @param {'subscribe' | 'unsubscribe'} kind
   * @param {unknown[]} items
   * @param {string[]} names
   * @returns {Frame}
   */
  #request (kind, items, names) {
    const id = this.#nextId++
    this.#pending.set(id, { kind, channels: names })
    return { id, text: JSON.stringify({ [kind]: items, id }) }
  }

  /** @param {ChannelRecord[]} records @returns {Frame[]} */
  #subscribe (records) {
    if (!this.#open || records.length === 0) return []
    const items = records.map((record) => {
      if (record.seq === null) return record.name
      if (record.epoch === null) return { channel: record.name, since: record.seq }
      return { channel: record.name, since: record.seq, epoch: record.epoch }
    })
    const frame = this.#request('subscribe', items, records.map((record) => record.name))
    for (const record of records) {
      record.requestId = frame.id
      record.since = record.seq
      record.acked = false
    }
    return [frame]
  }

  /** Subscribe again from the record's (lowered) position. @param {ChannelRecord} record @returns {Frame[]} */
  #resubscribe (record) {
    if (!this.#open) return []
    return [this.#request('unsubscribe', [record.name], [record.name]), ...this.#subscribe([record])]
  }

  /**
   * Tab `tab` wants channel `name`, having seen it up to `position` (null: nothing).
   *
   * Returns the frames to send, and the acks that can be given at once (the
   * channel is already subscribed from a position the tab can continue from).
   *
   * @param {string} tab
   * @param {string} name
   * @param {Position | null} [position]
   * @returns {{frames: Frame[], acks: Array<{to: string[], ack: Ack}>}}
   */
  want (tab, name, position = null) {
    const record = this.#channels.get(name)
    if (record === undefined) {
      /** @type {ChannelRecord} */
      const created = {
        name,
        tabs: new Set([tab]),
        waiting: new Set([tab]),
        seq: position?.seq ?? null,
        epoch: position?.epoch ?? null,
        since: null,
        requestId: null,
        acked: false,
      }
      this.#channels.set(name, created)
      return { frames: this.#subscribe([created]), acks: [] }
    }
    record.tabs.add(tab)
    const sameEpoch = position !== null && (position.epoch === null || record.epoch === null || position.epoch === record.epoch)
    const behind = position !== null && (record.seq === null || (sameEpoch && position.seq < record.seq))
    if (record.acked && !behind) {
      const ack = { channel: name, seq: record.seq, epoch: record.epoch, since: position?.seq ?? null }
      if (position !== null) Object.assign(ack, { recovered: sameEpoch })
      return { frames: [], acks: [{ to: [tab], ack }] }
    }
    record.waiting.add(tab)
    if (!behind) return { frames: [], acks: [] }
    record.seq = position.seq
    record.epoch = position.epoch ?? record.epoch
    return { frames: record.requestId === null ? this.#subscribe([record]) : this.#resubscribe(record), acks: [] }
  }

  /**
   * Tab `tab` no longer wants channel `name`; unsubscribe when it was the last.
   * @param {string} tab
   * @param {string} name
   * @returns {Frame[]}
   */
  unwant (tab, name) {
    const record = this.#channels.get(name)
    if (record === undefined || !record.tabs.delete(tab)) return []
    record.waiting.delete(tab)
    if (record.tabs.size > 0) return []
    this.#channels.delete(name)
    if (!this.#open || record.requestId === null) return []
    return [this.#request('unsubscribe', [name], [name])]
  }

  /**
   * Make tab `tab` want exactly `channels` (a full list, with positions).
   * @param {string} tab
   * @param {Record<string, Position | null>} channels
   * @returns {{frames: Frame[], acks: Array<{to: string[], ack: Ack}>}}
   */
  sync (tab, channels) {
    const frames = []
    const acks = []
    for (const [name, record] of this.#channels) {
      if (record.tabs.has(tab) && !Object.hasOwn(channels, name)) frames.push(...this.unwant(tab, name))
    }
    for (const [name, position] of Object.entries(channels)) {
      const result = this.want(tab, name, position)
      frames.push(...result.frames)
      acks.push(...result.acks)
    }
    return { frames, acks }
  }

  /** Tab `tab` is gone: drop its references. @param {string} tab @returns {Frame[]} */
  dropTab (tab) {
    return this.channels().flatMap((name) => this.unwant(tab, name))
  }

  /**
   * A connection is open: ONE subscribe naming every channel, each from its last
   * position (`since`/`epoch`), so the server replays what was missed.
   * @returns {Frame[]}
   */
  opened () {
    this.#open = true
    this.#pending.clear()
    for (const record of this.#channels.values()) record.waiting = new Set(record.tabs)
    return this.#subscribe([...this.#channels.values()])
  }

  /** The connection is gone: forget what was in flight; every tab waits for the next ack. */
  lost () {
    this.#open = false
    this.#pending.clear()
    for (const record of this.#channels.values()) {
      record.requestId = null
      record.acked = false
      record.waiting = new Set(record.tabs)
    }
  }

  /**
   * Subscribe again the channels of a subscribe the server could not serve
   * (`backend_unavailable`) and that nobody asked for since.
   * @param {string[]} names
   * @param {number} requestId
   * @returns {Frame[]}
   */
  retry (names, requestId) {
    const records = names
      .map((name) => this.#channels.get(name))
      .filter((record) => record !== undefined && record.requestId === requestId)
    return this.#subscribe(/** @type {ChannelRecord[]} */ (records))
  }

  /**
   * What one parsed server frame means.
   *
   * - `{kind: 'event', event}`: relay it to every tab (each drops duplicates);
   * - `{kind: 'acks', acks}`: tell the waiting tabs where each channel stands;
   * - `{kind: 'errors', errors, retry}`: refused subscriptions (removed from the
   *   table), or channels to subscribe again later (`retry`);
   * - `{kind: 'ignored', reason}`.
   *
   * @param {any} data
   * @returns {{kind: 'event', event: BroadcastEvent}
   *   | {kind: 'acks', requestId: number, acks: Array<{to: string[], ack: Ack}>}
   *   | {kind: 'errors', requestId: number | null, code: string, message: string,
   *      errors: Array<{to: string[], error: SubscriptionError}>, retry: string[]}
   *   | {kind: 'ignored', reason: string}}
   */
  receive (data) {
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      return { kind: 'ignored', reason: 'the frame is not a JSON object' }
    }
    if (data.type === 'ack') return this.#ack(data)
    if (data.type === 'error') return this.#error(data)
    if (data.type !== undefined) return { kind: 'ignored', reason: `unknown frame type ${JSON.stringify(data.type)}` }
    const { channel, event, seq, epoch } = data
    if (!isChannelName(channel) || typeof event !== 'string' || !isSeq(seq) || typeof epoch !== 'string') {
      return { kind: 'ignored', reason: 'a malformed event' }
    }
    const record = this.#channels.get(channel)
    if (record === undefined) return { kind: 'ignored', reason: `an event of ${channel}, which no tab wants` }
    if (record.epoch === epoch) {
      if (record.seq === null || seq > record.seq) record.seq = seq
    } else if (record.acked) {
      record.seq = seq
      record.epoch = epoch
    }
    return { kind: 'event', event: data }
  }

  /**
   * @param {any} data
   * @returns {{kind: 'acks', requestId: number, acks: Array<{to: string[], ack: Ack}>} | {kind: 'ignored', reason: string}}
   */
  #ack (data) {
    const request = this.#pending.get(data.id)
    if (request === undefined) return { kind: 'ignored', reason: `an ack for no pending request (id ${data.id})` }
    this.#pending.delete(data.id)
    /** @type {Array<{to: string[], ack: Ack}>} */
    const acks = []
    if (request.kind !== 'subscribe') return { kind: 'acks', requestId: data.id, acks }
    const results = data.channels !== null && typeof data.channels === 'object' ? data.channels : {}
    for (const name of request.channels) {
      const record = this.#channels.get(name)
      if (record === undefined || record.requestId !== data.id) continue // unsubscribed or re-requested since
      const info = results[name]
      /** @type {Ack} */
      const ack = { channel: name, seq: record.seq, epoch: record.epoch, since: record.since }
      if (info && isSeq(info.seq) && typeof info.epoch === 'string') {
        const recovered = typeof info.recovered === 'boolean' ? info.recovered : undefined
        if (recovered === true && record.seq !== null) {
          record.epoch = info.epoch // the replay from our own seq follows
        } else {
          record.seq = info.seq
          record.epoch = info.epoch
        }
        Object.assign(ack, { seq: info.seq, epoch: info.epoch })
        if (recovered !== undefined) ack.recovered = recovered
      }
      record.acked = true
      acks.push({ to: [...record.waiting], ack })
      record.waiting.clear()
    }
    return { kind: 'acks', requestId: data.id, acks }
  }

  /**
   * @param {any} data
   * @returns {{kind: 'errors', requestId: number | null, code: string, message: string,
   *   errors: Array<{to: string[], error: SubscriptionError}>, retry: string[]}}
   */
  #error (data) {
    const code = String(data.code ?? 'error')
    const message = String(data.message ?? '')
    const request = this.#pending.get(data.id)
    /** @type {Array<{to: string[], error: SubscriptionError}>} */
    const errors = []
    /** @type {string[]} */
    const retry = []
    const requestId = request === undefined ? null : data.id
    if (request !== undefined) this.#pending.delete(data.id)
    if (request?.kind === 'subscribe') {
      for (const name of request.channels) {
        const record = this.#channels.get(name)
        if (record === undefined || record.requestId !== data.id) continue
        if (code === 'backend_unavailable') {
          retry.push(name)
        } else {
          this.#channels.delete(name)
          errors.push({ to: [...record.tabs], error: { channel: name, code, message } })
        }
      }
    }
    return { kind: 'errors', requestId, code, message, errors, retry }
  }
}

// -- a tab's table ----------------------------------------------------------------

/**
 * @typedef {object} HandlerEntry
 * One handler on one channel, as `subscribe()` registers it.
 * @property {string} channel
 * @property {(event: BroadcastEvent) => void} callback
 * @property {((info: RecoveryInfo) => void) | undefined} onUnrecovered
 * @property {((error: SubscriptionError) => void) | undefined} onError
 * @property {((ack: Ack) => void) | undefined} [onReady]
 * @property {boolean} active
 */

/**
 * @typedef {object} TabChannel
 * @property {Set<HandlerEntry>} entries
 * @property {number | null} seq the last seq delivered
 * @property {string | null} epoch
 * @property {boolean} ready acked since the last (re)connection or change of leader
 */

/**
 * What one tab knows: its handlers and the last position it delivered on each
 * channel. Decides, without I/O, what to do with an event (deliver, drop as a
 * duplicate, report a loss first) and with an ack (where to continue from, and
 * whether something was lost).
 */
export class TabTable {
  /** @type {Map<string, TabChannel>} */
  #channels = new Map()

  /**
   * Register `entry`; true when it is its channel's first (the channel must then be wanted).
   * @param {HandlerEntry} entry
   * @param {Position | null} [since] where to start a new channel from
   */
  add (entry, since = null) {
    const existing = this.#channels.get(entry.channel)
    if (existing !== undefined) {
      existing.entries.add(entry)
      return false
    }
    this.#channels.set(entry.channel, {
      entries: new Set([entry]),
      seq: since?.seq ?? null,
      epoch: since?.epoch ?? null,
      ready: false,
    })
    return true
  }

  /**
   * Unregister `entry`; true when it was its channel's last (the channel must then be unwanted).
   * @param {HandlerEntry} entry
   */
  remove (entry) {
    entry.active = false
    const state = this.#channels.get(entry.channel)
    if (state === undefined || !state.entries.delete(entry)) return false
    if (state.entries.size > 0) return false
    this.#channels.delete(entry.channel)
    return true
  }

  /** Whether the tab has handlers on `name`. @param {string} name */
  has (name) {
    return this.#channels.has(name)
  }

  /** Whether `name` is acked. @param {string} name */
  isReady (name) {
    return this.#channels.get(name)?.ready === true
  }

  /** The channels with handlers. @returns {string[]} */
  channels () {
    return [...this.#channels.keys()]
  }

  /** The last position delivered on `name`. @param {string} name @returns {Position | null} */
  position (name) {
    const state = this.#channels.get(name)
    return state && state.seq !== null ? { seq: state.seq, epoch: state.epoch } : null
  }

  /** Every channel with its last position: what to subscribe with after a change of leader. */
  positions () {
    /** @type {Record<string, Position | null>} */
    const result = {}
    for (const name of this.#channels.keys()) result[name] = this.position(name)
    return result
  }

  /** The handlers of `name`. @param {string} name @returns {HandlerEntry[]} */
  entries (name) {
    return [...(this.#channels.get(name)?.entries ?? [])]
  }

  /** The connection (or the leader) changed: every channel waits for its next ack. */
  reset () {
    for (const state of this.#channels.values()) state.ready = false
  }

  /**
   * Apply an ack; return the loss to report, if any.
   *
   * With `recovered: true` and a position at or after the request's `since`,
   * the tab keeps its position: the replay follows, and what it already has is
   * dropped as duplicates. A tab at or after the ack's position in its epoch
   * lost nothing. Otherwise a tab that had a position lost what lies between:
   * it continues from the ack's position and reports the loss.
   *
   * @param {Ack} ack
   * @returns {{loss: RecoveryInfo | null, entries: HandlerEntry[]}}
   */
  applyAck (ack) {
    const state = this.#channels.get(ack.channel)
    if (state === undefined) return { loss: null, entries: [] }
    const { seq, epoch, recovered, since } = ack
    let loss = null
    if (seq !== null && epoch !== null) {
      const sameEpoch = state.epoch === null || state.epoch === epoch
      if (state.seq === null) {
        state.seq = seq
        state.epoch = epoch
      } else if (recovered === true && sameEpoch && since !== null && state.seq >= since) {
        state.epoch = epoch
      } else if (sameEpoch && state.seq >= seq && recovered !== false) {
        state.epoch = epoch
      } else {
        const reason = recovered === false
          ? RecoveryReason.NOT_RECOVERED
          : sameEpoch ? RecoveryReason.GAP : RecoveryReason.EPOCH_CHANGED
        loss = {
          channel: ack.channel,
          recovered: /** @type {const} */ (false),
          reason,
          position: { seq, epoch },
          previous: { seq: state.seq, epoch: state.epoch },
        }
        state.seq = seq
        state.epoch = epoch
      }
    }
    state.ready = true
    return { loss, entries: [...state.entries] }
  }

  /**
   * Decide what to do with an event: deliver it (after reporting a loss, if
   * its epoch changed or its seq skipped some), or drop it (a duplicate, or a
   * channel not acked yet).
   *
   * @param {BroadcastEvent} event
   * @returns {{deliver: HandlerEntry[], loss: RecoveryInfo | null, duplicate: boolean}}
   */
  applyEvent (event) {
    const state = this.#channels.get(event.channel)
    const seq = /** @type {number} */ (event.seq)
    const epoch = /** @type {string} */ (event.epoch)
    if (state === undefined || !state.ready) return { deliver: [], loss: null, duplicate: false }
    let loss = null
    if (state.seq !== null) {
      let reason = null
      if (state.epoch !== null && epoch !== state.epoch) reason = RecoveryReason.EPOCH_CHANGED
      else if (seq <= state.seq) return { deliver: [], loss: null, duplicate: true }
      else if (seq !== state.seq + 1) reason = RecoveryReason.GAP
      if (reason !== null) {
        loss = {
          channel: event.channel,
          recovered: /** @type {const} */ (false),
          reason,
          position: { seq: seq - 1, epoch },
          previous: { seq: state.seq, epoch: state.epoch },
        }
      }
    }
    state.seq = seq
    state.epoch = epoch
    return { deliver: [...state.entries], loss, duplicate: false }
  }

  /**
   * The server refused the channel: remove it and return its handlers.
   * @param {string} name
   * @returns {HandlerEntry[]}
   */
  fail (name) {
    const state = this.#channels.get(name)
    if (state === undefined) return []
    this.#channels.delete(name)
    for (const entry of state.entries) entry.active = false
    return [...state.entries]
  }
}

// -- the socket -------------------------------------------------------------------

/**
 * @typedef {object} Environment
 * What the client takes from the browser; tests pass fakes.
 * @property {any} WebSocket
 * @property {any} BroadcastChannel
 * @property {any} locks a `LockManager` (`navigator.locks`)
 * @property {() => number} random
 * @property {() => number} now
 * @property {(callback: () => void, ms: number) => any} setTimeout
 * @property {(handle: any) => void} clearTimeout
 * @property {(error: unknown) => void} reportError
 */

/**
 * @typedef {object} SessionHooks
 * @property {(state: string) => void} onState
 * @property {(event: BroadcastEvent) => void} onEvent
 * @property {(to: string[], ack: Ack) => void} onAck
 * @property {(to: string[], error: SubscriptionError) => void} onError
 */

/**
 * One reconnecting WebSocket around a {@link SocketTable}: connects, sends the
 * frames the table builds, feeds it what it reads and passes on what it says.
 * Only the tab holding the socket runs one.
 */
class SocketSession {
  #url
  #options
  #env
  #hooks
  #table = new SocketTable()
  /** @type {any} */
  #ws = null
  /** @type {string} */
  #state = ClientState.DISCONNECTED
  #stopped = true
  #everConnected = false
  /** @type {number | null} */
  #openedAt = null
  /** @type {Generator<number, never, void> | null} */
  #delays = null
  /** @type {any} */
  #timer = null
  /** @type {Map<number, any>} */
  #requestTimers = new Map()
  /** @type {Set<any>} */
  #retryTimers = new Set()
  /** The close code of the last connection that closed (1006 if it dropped). @type {number | null} */
  closeCode = null

  /**
   * @param {string} url
   * @param {{backoff: {initial: number, maximum: number, factor: number}, requestTimeout: number, openTimeout: number}} options
   * @param {Environment} env
   * @param {SessionHooks} hooks
   */
  constructor (url, options, env, hooks) {
    this.#url = url
    this.#options = options
    this.#env = env
    this.#hooks = hooks
  }

  get state () {
    return this.#state
  }

  /** @param {string} state */
  #setState (state) {
    if (state === this.#state) return
    this.#state = state
    this.#hooks.onState(state)
  }

  /**
   * Open the socket and keep it open.
   * @param {boolean} [resuming] true when taking over from another tab: the state is then `reconnecting`
   */
  start (resuming = false) {
    if (!this.#stopped) return
    this.#stopped = false
    this.#everConnected = resuming
    this.#setState(resuming ? ClientState.RECONNECTING : ClientState.CONNECTING)
    this.#connect()
  }

  stop () {
    this.#stopped = true
    if (this.#timer !== null) this.#env.clearTimeout(this.#timer)
    this.#timer = null
    for (const timer of this.#retryTimers) this.#env.clearTimeout(timer)
    this.#retryTimers.clear()
    for (const timer of this.#requestTimers.values()) this.#env.clearTimeout(timer)
    this.#requestTimers.clear()
    const ws = this.#ws
    if (ws !== null) {
      this.#detach(ws)
      try {
        ws.close(1000, 'client disconnected')
      } catch {}
    }
    this.#table.lost()
    this.#setState(ClientState.DISCONNECTED)
  }

  /** @param {string} tab @param {string} name @param {Position | null} position */
  want (tab, name, position) {
    this.#apply(this.#table.want(tab, name, position))
  }

  /** @param {string} tab @param {Record<string, Position | null>} channels */
  sync (tab, channels) {
    this.#apply(this.#table.sync(tab, channels))
  }

  /** @param {string} tab @param {string} name */
  unwant (tab, name) {
    this.#send(this.#table.unwant(tab, name))
  }

  /** @param {string} tab */
  dropTab (tab) {
    this.#send(this.#table.dropTab(tab))
  }

  /** @param {{frames: Frame[], acks: Array<{to: string[], ack: Ack}>}} result */
  #apply ({ frames, acks }) {
    this.#send(frames)
    for (const { to, ack } of acks) this.#hooks.onAck(to, ack)
  }

  #connect () {
    const token = this.#options.token
    if (typeof token === 'function') {
      // A fresh token for every attempt: an expired one (close 4001) is replaced on the reconnect.
      let fetched
      try {
        fetched = Promise.resolve(token())
      } catch (error) {
        fetched = Promise.reject(error)
      }
      fetched.then(
        (value) => { if (!this.#stopped) this.#open(withToken(this.#url, value)) },
        (error) => {
          if (this.#stopped) return
          this.#env.reportError(error)
          this.#reconnectLater() // could not fetch a token: retry with backoff
        },
      )
      return
    }
    this.#open(token ? withToken(this.#url, token) : this.#url)
  }

  /** @param {string} url */
  #open (url) {
    let ws
    try {
      ws = new this.#env.WebSocket(url, [SUBPROTOCOL])
    } catch (error) {
      this.#env.reportError(error)
      this.#stopped = true
      this.#setState(ClientState.DISCONNECTED)
      return
    }
    this.#ws = ws
    const openTimer = this.#env.setTimeout(() => this.#drop(ws), this.#options.openTimeout)
    ws.onopen = () => {
      this.#env.clearTimeout(openTimer)
      this.#openedAt = this.#env.now()
      this.#everConnected = true
      this.#setState(ClientState.CONNECTED)
      this.#send(this.#table.opened())
    }
    ws.onmessage = (/** @type {{data: unknown}} */ message) => this.#receive(message.data)
    ws.onclose = (/** @type {{code: number}} */ close) => {
      this.#env.clearTimeout(openTimer)
      this.#closed(ws, close.code)
    }
    ws.onerror = () => {} // a close event follows
  }

  /** @param {any} ws */
  #detach (ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null
  }

  /** The connection is dead (no handshake, or no answer in time): drop it. @param {any} ws */
  #drop (ws) {
    if (ws !== this.#ws) return
    this.#detach(ws)
    try {
      ws.close()
    } catch {}
    this.#closed(ws, ABNORMAL_CLOSURE)
  }

  /** @param {any} ws @param {number} code */
  #closed (ws, code) {
    if (ws !== this.#ws) return
    this.#detach(ws)
    this.#ws = null
    this.closeCode = code
    for (const timer of this.#requestTimers.values()) this.#env.clearTimeout(timer)
    this.#requestTimers.clear()
    this.#table.lost()
    if (this.#stopped) return
    if (!shouldReconnect(code)) {
      this.#stopped = true
      this.#setState(ClientState.DISCONNECTED)
      return
    }
    if (this.#openedAt !== null && this.#env.now() - this.#openedAt >= STABLE_AFTER_MS) this.#delays = null
    this.#openedAt = null
    this.#reconnectLater()
  }

  /** Connect again after the next backoff delay. */
  #reconnectLater () {
    this.#setState(this.#everConnected ? ClientState.RECONNECTING : ClientState.CONNECTING)
    const delays = (this.#delays ??= backoff({ ...this.#options.backoff, random: this.#env.random }))
    this.#timer = this.#env.setTimeout(() => {
      this.#timer = null
      this.#connect()
    }, delays.next().value)
  }

  /** @param {Frame[]} frames */
  #send (frames) {
    const ws = this.#ws
    if (ws === null) return // the table only builds frames while a connection is open
    for (const frame of frames) {
      ws.send(frame.text)
      const timer = this.#env.setTimeout(() => {
        this.#requestTimers.delete(frame.id)
        if (this.#table.isPending(frame.id)) this.#drop(ws)
      }, this.#options.requestTimeout)
      this.#requestTimers.set(frame.id, timer)
    }
  }

  /** @param {unknown} text */
  #receive (text) {
    let data
    try {
      data = JSON.parse(String(text))
    } catch {
      return
    }
    const outcome = this.#table.receive(data)
    if (outcome.kind === 'event') {
      this.#hooks.onEvent(outcome.event)
      return
    }
    if (outcome.kind === 'ignored') return
    if (outcome.requestId !== null) {
      this.#env.clearTimeout(this.#requestTimers.get(outcome.requestId))
      this.#requestTimers.delete(outcome.requestId)
    }
    if (outcome.kind === 'acks') {
      for (const { to, ack } of outcome.acks) this.#hooks.onAck(to, ack)
      return
    }
    for (const { to, error } of outcome.errors) this.#hooks.onError(to, error)
    if (outcome.retry.length > 0 && outcome.requestId !== null) {
      const { retry, requestId } = outcome
      const delay = this.#options.backoff.initial * 10 * (0.5 + this.#env.random() / 2)
      const timer = this.#env.setTimeout(() => {
        this.#retryTimers.delete(timer)
        this.#send(this.#table.retry(retry, requestId))
      }, delay)
      this.#retryTimers.add(timer)
    }
  }
}

// -- the client -------------------------------------------------------------------

/**
 * @typedef {object} ClientOptions
 * @property {string} [clientId] this client's id, sent as `origin` by publishers to recognise the echo
 *   of its own changes (a random one by default)
 * @property {boolean} [shared] share one WebSocket between the tabs of the origin (default true;
 *   false, or a browser without Web Locks or BroadcastChannel: one socket per tab)
 * @property {{initial?: number, maximum?: number, factor?: number}} [backoff] reconnection delays, ms
 *   (default 100, 10000, 2)
 * @property {number} [requestTimeout] ms to wait for an answer before the connection is deemed dead (10000)
 * @property {number} [openTimeout] ms to wait for the opening handshake (10000)
 * @property {Partial<Environment>} [environment] replacements for the browser's APIs, for tests
 */

/**
 * @typedef {object} SubscribeOptions
 * @property {(info: RecoveryInfo) => void} [onUnrecovered] messages were lost: refetch
 * @property {(error: SubscriptionError) => void} [onError] the server refused the subscription
 * @property {(ack: Ack) => void} [onReady] the subscription is acked (after each connection and change
 *   of leader): events after `ack.seq` will be delivered. Fetch what you show from here on, and no
 *   change is missed between the fetch and the events
 * @property {number} [since] start after this seq (a position kept from an earlier visit)
 * @property {string} [epoch] the epoch of `since`
 */

/** @returns {string} */
function randomId () {
  const bytes = new Uint8Array(8)
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes)
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256)
  return [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('')
}

/**
 * `url` as an absolute ws:// or wss:// URL: http(s) URLs and paths are converted.
 * @param {string} url
 */
function websocketUrl (url) {
  if (typeof url !== 'string' || url === '') throw new TypeError('BroadcastClient needs the URL of the server\'s WebSocket endpoint')
  const base = globalThis.location?.href
  let parsed
  try {
    parsed = base === undefined ? new URL(url) : new URL(url, base)
  } catch {
    throw new TypeError(`invalid server URL ${JSON.stringify(url)}: use ws://host:port/ws/broadcast`)
  }
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:'
  else if (parsed.protocol === 'https:') parsed.protocol = 'wss:'
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new TypeError(`invalid server URL ${JSON.stringify(url)}: it must be ws://, wss://, http://, https:// or a path`)
  }
  return parsed.href
}

/** @returns {{promise: Promise<void>, resolve: () => void}} */
function deferred () {
  /** @type {() => void} */
  let resolve = () => {}
  const promise = new Promise((done) => { resolve = () => done(undefined) })
  return { promise, resolve }
}

/** @param {unknown} error */
function ignoreAbort (error) {
  if (/** @type {{name?: unknown}} */ (error)?.name !== 'AbortError') throw error
}

/**
 * A reconnecting, recovering client of a broadcast server, sharing one
 * WebSocket between the tabs of an origin.
 *
 * Tabs elect a leader with the Web Locks API. The leader holds the socket and
 * relays events, acks and its connection state to the other tabs over a
 * BroadcastChannel; each tab tells the leader which channels it wants, and the
 * leader subscribes a channel while at least one tab wants it. When the leader
 * goes (tab closed, `disconnect()`), the next tab in line takes the lock and
 * resubscribes every channel from the last `seq` the tabs saw: nothing is lost,
 * and each tab drops what it already has. Each tab also holds a lock of its own
 * while connected, so that the leader notices a tab that went away.
 *
 * Messages on the BroadcastChannel (`{t, from, ...}`): `hello` (a tab's full
 * channel list with positions), `want`, `unwant`, `bye` (tab → leader);
 * `leader` (announce and connection state), `event`, `ack`, `error`
 * (leader → tabs); `local` (any tab → other tabs).
 */
export class BroadcastClient {
  #url
  #options
  /** @type {Environment} */
  #env
  #tabId = randomId()
  #tab = new TabTable()
  /** @type {string} */
  #state = ClientState.DISCONNECTED
  /** @type {'leader' | 'follower' | 'solo' | null} */
  #role = null
  #running = false
  /** @type {Set<(state: string) => void>} */
  #stateCallbacks = new Set()
  /** @type {Set<(role: string | null) => void>} */
  #roleCallbacks = new Set()
  /** @type {SocketSession | null} */
  #session = null
  /** @type {any} */
  #channel = null
  /** @type {string | null} */
  #leaderId = null
  #helloSent = false
  /** @type {AbortController | null} */
  #abort = null
  /** @type {{promise: Promise<void>, resolve: () => void} | null} */
  #tabLock = null
  /** @type {{promise: Promise<void>, resolve: () => void} | null} */
  #leadership = null
  /** @type {Set<string>} */
  #watched = new Set()

  /**
   * @param {string} url the server's WebSocket endpoint: `ws://host:8000/ws/broadcast`, an http(s)
   *   URL or a path such as `/ws/broadcast` (resolved against the page)
   * @param {ClientOptions} [options]
   */
  constructor (url, options = {}) {
    this.#url = websocketUrl(url)
    const { initial = 100, maximum = 10_000, factor = 2 } = options.backoff ?? {}
    backoff({ initial, maximum, factor }).next() // validates
    this.#options = {
      backoff: { initial, maximum, factor },
      requestTimeout: options.requestTimeout ?? 10_000,
      openTimeout: options.openTimeout ?? 10_000,
      shared: options.shared ?? true,
      token: options.token ?? null,
    }
    const env = options.environment ?? {}
    // An API given as null in `environment` is taken as missing (to test the fallbacks).
    this.#env = {
      WebSocket: 'WebSocket' in env ? env.WebSocket : globalThis.WebSocket,
      BroadcastChannel: 'BroadcastChannel' in env ? env.BroadcastChannel : globalThis.BroadcastChannel,
      locks: 'locks' in env ? env.locks : globalThis.navigator?.locks,
      random: env.random ?? Math.random,
      now: env.now ?? (() => Date.now()),
      setTimeout: env.setTimeout ?? ((callback, ms) => globalThis.setTimeout(callback, ms)),
      clearTimeout: env.clearTimeout ?? ((handle) => globalThis.clearTimeout(handle)),
      reportError: env.reportError ?? globalThis.reportError ?? ((error) => console.error(error)),
    }
    /** This client's id: publishers pass it as `origin` so that the client can ignore its own echo. */
    this.clientId = options.clientId ?? randomId()
  }

  /** The server's WebSocket URL. */
  get url () {
    return this.#url
  }

  /** The connection's state: one of {@link ClientState}. For a tab that does not hold the socket, the leader's. */
  get state () {
    return this.#state
  }

  /**
   * This tab's part: `'leader'` (holds the socket shared with other tabs),
   * `'follower'` (uses the leader's), `'solo'` (a socket of its own), or
   * `null` (not connected).
   */
  get role () {
    return this.#role
  }

  /** Whether the tabs share one socket (Web Locks and BroadcastChannel are available and `shared` is not false). */
  get shared () {
    return Boolean(this.#options.shared && this.#env.locks && this.#env.BroadcastChannel)
  }

  /** The channels this client has handlers on. @returns {string[]} */
  channels () {
    return this.#tab.channels()
  }

  /** The last position delivered on `channel` (what to keep to resume later with `since`/`epoch`). @param {string} channel */
  position (channel) {
    return this.#tab.position(channel)
  }

  /**
   * Call `callback(state)` on every state change; return a function that removes it.
   * @param {(state: string) => void} callback
   * @returns {() => void}
   */
  onStateChange (callback) {
    this.#stateCallbacks.add(callback)
    return () => { this.#stateCallbacks.delete(callback) }
  }

  /**
   * Call `callback(role)` when this tab's role changes; return a function that removes it.
   * @param {(role: string | null) => void} callback
   * @returns {() => void}
   */
  onRoleChange (callback) {
    this.#roleCallbacks.add(callback)
    return () => { this.#roleCallbacks.delete(callback) }
  }

  /** @param {string} state */
  #setState (state) {
    if (state === this.#state) return
    this.#state = state
    if (state !== ClientState.CONNECTED) this.#tab.reset()
    for (const callback of [...this.#stateCallbacks]) this.#call(callback, state)
  }

  /** @param {'leader' | 'follower' | 'solo' | null} role */
  #setRole (role) {
    if (role === this.#role) return
    this.#role = role
    for (const callback of [...this.#roleCallbacks]) this.#call(callback, role)
  }

  /**
   * @template T
   * @param {(argument: T) => void} callback
   * @param {T} argument
   */
  #call (callback, argument) {
    try {
      callback(argument)
    } catch (error) {
      this.#env.reportError(error)
    }
  }

  /**
   * Start: take part in the tabs' election (or open a socket of this tab's own)
   * and keep the connection up, reconnecting with backoff, until `disconnect()`.
   * Calling it again while running does nothing.
   */
  connect () {
    if (this.#running) return
    this.#running = true
    this.#tabId = randomId() // a new name each time: the leader may still be dropping the previous one
    this.#setState(ClientState.CONNECTING)
    const BroadcastChannel = this.#env.BroadcastChannel
    if (BroadcastChannel) {
      this.#channel = new BroadcastChannel(`${MESSAGE_PREFIX} ${this.#url}`)
      this.#channel.onmessage = (/** @type {{data: any}} */ message) => this.#onMessage(message.data)
    }
    if (!this.shared) {
      this.#startSession('solo')
      return
    }
    this.#setRole('follower')
    const abort = new AbortController()
    this.#abort = abort
    const tabLock = deferred()
    this.#tabLock = tabLock
    const locks = this.#env.locks
    locks.request(this.#lockName(this.#tabId), { signal: abort.signal }, () => {
      if (abort.signal.aborted) return undefined
      // Hold this tab's lock while connected: the leader waits for it to learn that the tab went away.
      this.#sendHello()
      locks.request(this.#lockName('leader'), { signal: abort.signal }, () => this.#lead(abort)).catch(ignoreAbort)
      return tabLock.promise
    }).catch(ignoreAbort)
  }

  /**
   * Stop: close the socket (another tab then takes it over) or leave the
   * leader's, and stop reconnecting; the state becomes `disconnected`.
   * Subscriptions and their positions are kept: `connect()` resumes them.
   */
  disconnect () {
    if (!this.#running) return
    this.#running = false
    this.#abort?.abort()
    this.#abort = null
    const session = this.#session
    this.#session = null
    session?.stop()
    if (this.#role === 'follower' && this.#helloSent) this.#post({ t: 'bye' })
    if (this.#role === 'leader') this.#post({ t: 'bye' })
    this.#leadership?.resolve()
    this.#leadership = null
    this.#tabLock?.resolve()
    this.#tabLock = null
    this.#watched.clear()
    this.#channel?.close()
    this.#channel = null
    this.#leaderId = null
    this.#helloSent = false
    this.#setRole(null)
    this.#setState(ClientState.DISCONNECTED)
  }

  /** @param {string} suffix */
  #lockName (suffix) {
    return `${MESSAGE_PREFIX} ${this.#url} ${suffix}`
  }

  /** @param {Record<string, unknown>} message */
  #post (message) {
    this.#channel?.postMessage({ ...message, from: this.#tabId })
  }

  #sendHello () {
    this.#helloSent = true
    this.#post({ t: 'hello', channels: this.#tab.positions() })
  }

  /**
   * This tab got the leader lock: hold the socket until the returned promise resolves.
   * @param {AbortController} abort
   */
  #lead (abort) {
    if (abort.signal.aborted || !this.#running) return undefined
    const leadership = deferred()
    this.#leadership = leadership
    this.#leaderId = this.#tabId
    this.#startSession('leader')
    return leadership.promise
  }

  /** @param {'leader' | 'solo'} role */
  #startSession (role) {
    const leader = role === 'leader'
    const session = new SocketSession(this.#url, this.#options, this.#env, {
      onState: (state) => {
        if (this.#session !== session) return // stopped by disconnect(): the followers are told 'bye'
        this.#setState(state)
        if (leader) this.#post({ t: 'leader', state })
      },
      onEvent: (event) => {
        if (leader) this.#post({ t: 'event', event })
        this.#deliver(event)
      },
      onAck: (to, ack) => {
        if (leader && to.some((tab) => tab !== this.#tabId)) this.#post({ t: 'ack', to, ack })
        if (to.includes(this.#tabId)) this.#applyAck(ack)
      },
      onError: (to, error) => {
        if (leader && to.some((tab) => tab !== this.#tabId)) this.#post({ t: 'error', to, error })
        if (to.includes(this.#tabId)) this.#fail(error)
      },
    })
    const resuming = this.#state !== ClientState.CONNECTING
    this.#session = session
    this.#tab.reset()
    session.sync(this.#tabId, this.#tab.positions())
    this.#setRole(role)
    session.start(resuming)
  }

  /** A message from another tab. @param {any} message */
  #onMessage (message) {
    if (message === null || typeof message !== 'object' || typeof message.from !== 'string') return
    const { t, from } = message
    if (t === 'local') {
      this.#deliverLocal(message.event)
      return
    }
    if (this.#role === 'leader' && this.#session !== null) {
      this.#onFollowerMessage(message)
      return
    }
    if (this.#role !== 'follower') return
    if (t === 'leader') {
      if (from !== this.#leaderId) {
        // A new leader: resubscribe everything through it, from our last positions.
        this.#leaderId = from
        this.#tab.reset()
        if (this.#helloSent) this.#sendHello()
      }
      this.#setState(message.state)
    } else if (from !== this.#leaderId) {
      // Not from our leader (an old leader's last words): its replay covers them.
    } else if (t === 'event') {
      this.#deliver(message.event)
    } else if (t === 'ack' && message.to.includes(this.#tabId)) {
      this.#applyAck(message.ack)
    } else if (t === 'error' && message.to.includes(this.#tabId)) {
      this.#fail(message.error)
    } else if (t === 'bye') {
      this.#leaderId = null
      this.#setState(ClientState.RECONNECTING)
    }
  }

  /** As the leader, a message from another tab. @param {any} message */
  #onFollowerMessage (message) {
    const session = /** @type {SocketSession} */ (this.#session)
    const { t, from } = message
    if (t === 'hello') {
      this.#watch(from)
      this.#post({ t: 'leader', state: session.state })
      session.sync(from, message.channels ?? {})
    } else if (t === 'want' && isChannelName(message.channel)) {
      this.#watch(from)
      session.want(from, message.channel, message.position ?? null)
    } else if (t === 'unwant') {
      session.unwant(from, message.channel)
    } else if (t === 'bye') {
      session.dropTab(from)
    }
  }

  /** As the leader, drop tab `tab`'s channels once its lock is free (it went away). @param {string} tab */
  #watch (tab) {
    if (this.#watched.has(tab) || this.#abort === null) return
    this.#watched.add(tab)
    const abort = this.#abort
    this.#env.locks.request(this.#lockName(tab), { signal: abort.signal }, () => {
      this.#watched.delete(tab)
      if (!abort.signal.aborted) this.#session?.dropTab(tab)
    }).catch(ignoreAbort)
  }

  /** @param {Ack} ack */
  #applyAck (ack) {
    const { loss, entries } = this.#tab.applyAck(ack)
    if (loss !== null) this.#reportLoss(loss)
    for (const entry of entries) {
      if (entry.active && entry.onReady) this.#call(entry.onReady, ack)
    }
  }

  /** @param {RecoveryInfo} loss */
  #reportLoss (loss) {
    for (const entry of this.#tab.entries(loss.channel)) {
      if (entry.active && entry.onUnrecovered) this.#call(entry.onUnrecovered, loss)
    }
  }

  /** @param {SubscriptionError} error */
  #fail (error) {
    const entries = this.#tab.fail(error.channel)
    if (entries.length === 0) return
    for (const entry of entries) {
      if (entry.onError) this.#call(entry.onError, error)
      else this.#env.reportError(new Error(`the server refused the subscription to ${error.channel}: ${error.code}: ${error.message}`))
    }
  }

  /** @param {BroadcastEvent} event */
  #deliver (event) {
    if (event === null || typeof event !== 'object') return
    const { deliver, loss } = this.#tab.applyEvent(event)
    if (loss !== null) this.#reportLoss(loss)
    for (const entry of deliver) {
      if (entry.active) this.#call(entry.callback, event)
    }
  }

  /** @param {BroadcastEvent} event */
  #deliverLocal (event) {
    if (event === null || typeof event !== 'object' || !this.#tab.has(event.channel)) return
    for (const entry of this.#tab.entries(event.channel)) {
      if (entry.active) this.#call(entry.callback, event)
    }
  }

  /**
   * Call `callback(event)` for every event of `channel`; return a function that
   * unsubscribes (idempotent).
   *
   * The channel is subscribed on the server while at least one handler of any
   * tab wants it. Events come in `seq` order, each once, across reconnections
   * and changes of leader. When messages were lost (the server could not
   * recover them, or a gap or new epoch shows), `options.onUnrecovered(info)` is
   * called first (`info.recovered === false`): refetch what you show.
   *
   * @param {string} channel
   * @param {(event: BroadcastEvent) => void} callback
   * @param {SubscribeOptions} [options]
   * @returns {() => void}
   */
  subscribe (channel, callback, options = {}) {
    if (!isChannelName(channel)) {
      throw new TypeError(`invalid channel name ${JSON.stringify(channel)}: a channel name is 1 to 128 characters, each an ASCII letter, a digit or one of _ - . :`)
    }
    if (typeof callback !== 'function') throw new TypeError('subscribe() needs a callback function')
    const { since, epoch, onUnrecovered, onError, onReady } = options
    if (since !== undefined && !isSeq(since)) throw new TypeError('"since" must be a non-negative integer (a seq)')
    if (epoch !== undefined && (since === undefined || typeof epoch !== 'string' || epoch.length === 0 || epoch.length > 64)) {
      throw new TypeError('"epoch" must be a string of 1 to 64 characters, given with "since"')
    }
    /** @type {HandlerEntry} */
    const entry = { channel, callback, onUnrecovered, onError, onReady, active: true }
    const first = this.#tab.add(entry, since === undefined ? null : { seq: since, epoch: epoch ?? null })
    if (first) this.#want(channel)
    return () => {
      if (this.#tab.remove(entry)) this.#unwant(channel)
    }
  }

  /** @param {string} channel */
  #want (channel) {
    const position = this.#tab.position(channel)
    if (this.#session !== null) this.#session.want(this.#tabId, channel, position)
    else if (this.#role === 'follower' && this.#helloSent) this.#post({ t: 'want', channel, position })
  }

  /** @param {string} channel */
  #unwant (channel) {
    if (this.#session !== null) this.#session.unwant(this.#tabId, channel)
    else if (this.#role === 'follower' && this.#helloSent) this.#post({ t: 'unwant', channel })
  }

  /**
   * Tell the other tabs of this origin about a change at once, without waiting
   * for the server: their handlers of `channel` get
   * `{channel, event, payload, origin: clientId, local: true}` (no `seq`).
   * `payload` must be structured-cloneable (plain JSON is). Returns false when
   * there is no BroadcastChannel to send it on (not connected, or an old browser).
   *
   * @param {string} channel
   * @param {string} event
   * @param {unknown} [payload]
   * @returns {boolean}
   */
  emitLocal (channel, event, payload = null) {
    if (!isChannelName(channel)) throw new TypeError(`invalid channel name ${JSON.stringify(channel)}`)
    if (!isEventName(event)) {
      throw new TypeError(`invalid event name ${JSON.stringify(event)}: an event name is 1 to 128 characters, each an ASCII letter, a digit or one of _ - . :`)
    }
    if (this.#channel === null) return false
    this.#post({ t: 'local', event: { channel, event, payload, origin: this.clientId, local: true } })
    return true
  }
}

// -- invalidation -----------------------------------------------------------------

/**
 * @typedef {object} InvalidationRule
 * @property {string} channel the channel to listen to
 * @property {string[]} [events] the event names that invalidate (a name ending in `*` matches a prefix:
 *   `order.*`); every event when omitted
 * @property {unknown[]} keys the cache keys to invalidate (e.g. TanStack Query keys)
 * @property {boolean} [ignoreOwn] ignore events whose `origin` is this client's id (default true)
 */

/**
 * A matcher for event names: exact names, or prefixes written `prefix*`.
 * @param {string[] | undefined} events
 * @returns {(name: string) => boolean}
 */
export function eventMatcher (events) {
  if (events === undefined) return () => true
  const exact = new Set(events.filter((name) => !name.endsWith('*')))
  const prefixes = events.filter((name) => name.endsWith('*')).map((name) => name.slice(0, -1))
  return (name) => exact.has(name) || prefixes.some((prefix) => name.startsWith(prefix))
}

/**
 * Call `invalidate(keys, cause)` when an event of `rule.channel` matches
 * `rule.events`, except the echo of this client's own changes (events whose
 * `origin` is `client.clientId`); and call it whatever the events when
 * messages were lost (`cause.recovered === false`), since anything may have
 * changed. Local events of other tabs (`emitLocal`) invalidate too.
 * Returns a function that stops.
 *
 * ```js
 * invalidateOn(client, { channel: 'orders', events: ['order.*'], keys: [['orders']] },
 *   (keys) => keys.forEach((queryKey) => queryClient.invalidateQueries({ queryKey })))
 * ```
 *
 * @param {{clientId: string, subscribe: BroadcastClient['subscribe']}} client
 * @param {InvalidationRule} rule
 * @param {(keys: unknown[], cause: BroadcastEvent | RecoveryInfo) => void} invalidate
 * @returns {() => void}
 */
export function invalidateOn (client, rule, invalidate) {
  const { channel, events, keys, ignoreOwn = true } = rule
  if (!Array.isArray(keys)) throw new TypeError('invalidateOn() needs "keys": a list of cache keys')
  if (typeof invalidate !== 'function') throw new TypeError('invalidateOn() needs an invalidate function')
  const matches = eventMatcher(events)
  return client.subscribe(channel, (event) => {
    if (ignoreOwn && event.origin !== undefined && event.origin === client.clientId) return
    if (matches(event.event)) invalidate(keys, event)
  }, { onUnrecovered: (info) => invalidate(keys, info) })
}
