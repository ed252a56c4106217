/**
 * Types of broadcast-cli's browser client (broadcast.js, served at `GET /client.js`).
 * Wire protocol v1: see docs/protocol.md; usage: docs/browser.md.
 */

/** The protocol version this client speaks. */
export const PROTOCOL_VERSION: 1

/** The WebSocket subprotocol offered to the server. */
export const SUBPROTOCOL: 'broadcast.v1'

/** A connection that lasted this long (ms) restarts the backoff from its first delay. */
export const STABLE_AFTER_MS: number

/** The states of a client's connection. */
export const ClientState: Readonly<{
  DISCONNECTED: 'disconnected'
  CONNECTING: 'connecting'
  CONNECTED: 'connected'
  RECONNECTING: 'reconnecting'
}>
export type ClientState = 'disconnected' | 'connecting' | 'connected' | 'reconnecting'

/** Why messages of a channel were lost and the application must refetch. */
export const RecoveryReason: Readonly<{
  NOT_RECOVERED: 'not_recovered'
  EPOCH_CHANGED: 'epoch_changed'
  GAP: 'gap'
}>
export type RecoveryReason = 'not_recovered' | 'epoch_changed' | 'gap'

/** This tab's part in sharing the connection (`null`: not connected). */
export type ClientRole = 'leader' | 'follower' | 'solo' | null

/** A position in a channel (`epoch` is `null` only for a `since` given without one). */
export interface Position {
  seq: number
  epoch: string | null
}

/** An event, as the server sends it, or (with `local: true`) as another tab emitted it. */
export interface BroadcastEvent<P = unknown> {
  channel: string
  event: string
  payload: P
  /** The message's position in its channel; absent on local events. */
  seq?: number
  /** The generation of the channel's history; absent on local events. */
  epoch?: string
  /** A unique message id. */
  id?: string
  /** Server time of the publish, milliseconds since the Unix epoch. */
  ts?: number
  /** The publisher's client id, when it gave one. */
  origin?: string
  /** True for an event another tab emitted with `emitLocal()`. */
  local?: boolean
}

/** What `onUnrecovered` receives when messages of a channel were lost: refetch. */
export interface RecoveryInfo {
  channel: string
  recovered: false
  reason: RecoveryReason
  /** Events after this position are delivered from now on. */
  position: Position
  /** The last position seen before the loss. */
  previous: Position | null
}

/** The server's refusal of a subscription. */
export interface SubscriptionError {
  channel: string
  code: string
  message: string
}

/** A subscription's answer, as relayed to the tabs that wait for it. */
export interface Ack {
  channel: string
  seq: number | null
  epoch: string | null
  recovered?: boolean
  since: number | null
}

/** A request to send on the socket. */
export interface Frame {
  id: number
  text: string
}

/** What the client takes from the browser; tests pass fakes. */
export interface Environment {
  WebSocket: unknown
  BroadcastChannel: unknown
  locks: unknown
  random: () => number
  now: () => number
  setTimeout: (callback: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
  reportError: (error: unknown) => void
}

export interface BackoffOptions {
  /** The first delay, ms (default 100). */
  initial?: number
  /** The largest delay, ms (default 10000). */
  maximum?: number
  /** The growth factor (default 2). */
  factor?: number
}

export interface ClientOptions {
  /** This client's id, passed as `origin` by publishers (random by default). */
  clientId?: string
  /** Share one WebSocket between the tabs of the origin (default true). */
  shared?: boolean
  /** Reconnection delays. */
  backoff?: BackoffOptions
  /** Ms to wait for an answer before the connection is deemed dead (default 10000). */
  requestTimeout?: number
  /** Ms to wait for the opening handshake (default 10000). */
  openTimeout?: number
  /**
   * The connection token, for a server that requires one: a string, or a function (sync or async)
   * called before every connection attempt, so an expired token (close 4001) is replaced on the reconnect.
   */
  token?: string | (() => string | Promise<string>)
  /** Replacements for the browser's APIs, for tests. */
  environment?: Partial<Environment>
}

export interface SubscribeOptions {
  /** Messages were lost (`info.recovered === false`): refetch. */
  onUnrecovered?: (info: RecoveryInfo) => void
  /** The server refused the subscription. */
  onError?: (error: SubscriptionError) => void
  /**
   * The subscription is acked (after each connection and change of leader): events after
   * `ack.seq` will be delivered. Fetch what you show from here on and no change is missed.
   */
  onReady?: (ack: Ack) => void
  /** Start after this seq (a position kept from an earlier visit). */
  since?: number
  /** The epoch of `since`. */
  epoch?: string
}

/** Reconnection delays in ms, forever: exponential, with full jitter. */
export function backoff(options?: BackoffOptions & { random?: () => number }): Generator<number, never, void>

/** Whether to reconnect after the connection closed with `code`. */
export function shouldReconnect(code: number): boolean

/** Whether `name` is a valid channel name: 1 to 128 characters, each an ASCII letter, a digit or one of `_ - . :`. */
export function isChannelName(name: unknown): name is string

/** Whether `name` is a valid event name: the channel naming rule. */
export function isEventName(name: unknown): name is string

/** A matcher for event names: exact names, or prefixes written `prefix*`. */
export function eventMatcher(events: string[] | undefined): (name: string) => boolean

/** The socket holder's table: channels wanted by tabs, positions, requests in flight. No I/O. */
export class SocketTable {
  readonly isOpen: boolean
  channels(): string[]
  tabsOf(name: string): string[]
  position(name: string): Position | null
  isPending(id: number): boolean
  want(tab: string, name: string, position?: Position | null): { frames: Frame[]; acks: Array<{ to: string[]; ack: Ack }> }
  unwant(tab: string, name: string): Frame[]
  sync(tab: string, channels: Record<string, Position | null>): { frames: Frame[]; acks: Array<{ to: string[]; ack: Ack }> }
  dropTab(tab: string): Frame[]
  opened(): Frame[]
  lost(): void
  retry(names: string[], requestId: number): Frame[]
  receive(data: unknown):
    | { kind: 'event'; event: BroadcastEvent }
    | { kind: 'acks'; requestId: number; acks: Array<{ to: string[]; ack: Ack }> }
    | {
        kind: 'errors'
        requestId: number | null
        code: string
        message: string
        errors: Array<{ to: string[]; error: SubscriptionError }>
        retry: string[]
      }
    | { kind: 'ignored'; reason: string }
}

/** One handler on one channel. */
export interface HandlerEntry {
  channel: string
  callback: (event: BroadcastEvent) => void
  onUnrecovered: ((info: RecoveryInfo) => void) | undefined
  onError: ((error: SubscriptionError) => void) | undefined
  onReady?: ((ack: Ack) => void) | undefined
  active: boolean
}

/** What one tab knows: its handlers and the last position delivered per channel. No I/O. */
export class TabTable {
  add(entry: HandlerEntry, since?: Position | null): boolean
  remove(entry: HandlerEntry): boolean
  has(name: string): boolean
  isReady(name: string): boolean
  channels(): string[]
  position(name: string): Position | null
  positions(): Record<string, Position | null>
  entries(name: string): HandlerEntry[]
  reset(): void
  applyAck(ack: Ack): { loss: RecoveryInfo | null; entries: HandlerEntry[] }
  applyEvent(event: BroadcastEvent): { deliver: HandlerEntry[]; loss: RecoveryInfo | null; duplicate: boolean }
  fail(name: string): HandlerEntry[]
}

/** A reconnecting, recovering client, sharing one WebSocket between the tabs of an origin. */
export class BroadcastClient {
  /**
   * @param url the WebSocket endpoint: `ws://host:8000/ws/broadcast`, an http(s) URL or a path
   */
  constructor(url: string, options?: ClientOptions)
  /** This client's id: publishers pass it as `origin` so that the client can ignore its own echo. */
  readonly clientId: string
  /** The server's WebSocket URL. */
  readonly url: string
  /** The connection's state (for a tab that does not hold the socket, the leader's). */
  readonly state: ClientState
  /** This tab's part in sharing the connection. */
  readonly role: ClientRole
  /** Whether the tabs share one socket. */
  readonly shared: boolean
  /** The channels this client has handlers on. */
  channels(): string[]
  /** The last position delivered on `channel`. */
  position(channel: string): Position | null
  /** Start, and stay connected until `disconnect()`. */
  connect(): void
  /** Stop; subscriptions are kept for the next `connect()`. */
  disconnect(): void
  /** Call `callback` for every event of `channel`; returns the unsubscribe function. */
  subscribe<P = unknown>(
    channel: string,
    callback: (event: BroadcastEvent<P>) => void,
    options?: SubscribeOptions,
  ): () => void
  /** Call `callback` on every state change; returns a function that removes it. */
  onStateChange(callback: (state: ClientState) => void): () => void
  /** Call `callback` when this tab's role changes; returns a function that removes it. */
  onRoleChange(callback: (role: ClientRole) => void): () => void
  /**
   * Tell the other tabs at once, without the server; false when there is no BroadcastChannel.
   * Throws a TypeError for an invalid channel or event name.
   */
  emitLocal(channel: string, event: string, payload?: unknown): boolean
}

export interface InvalidationRule<K = unknown> {
  /** The channel to listen to. */
  channel: string
  /** Event names that invalidate (`prefix*` matches a prefix); every event when omitted. */
  events?: string[]
  /** The cache keys to invalidate. */
  keys: K[]
  /** Ignore the echo of this client's own changes (default true). */
  ignoreOwn?: boolean
}

/**
 * Call `invalidate(keys, cause)` for matching events (not this client's own echo),
 * and for everything when messages were lost. Returns a function that stops.
 */
export function invalidateOn<K = unknown>(
  client: Pick<BroadcastClient, 'clientId' | 'subscribe'>,
  rule: InvalidationRule<K>,
  invalidate: (keys: K[], cause: BroadcastEvent | RecoveryInfo) => void,
): () => void
