/**
 * What the Node integration tests share: the browser client under Node (with the
 * `ws` package as its WebSocket), real `broadcast serve` processes started and
 * stopped by the tests, waits on conditions with scaled timeouts, and the HTTP
 * publish API.
 *
 * tests/integration/test_js_client.py starts a redis-server and runs
 * `node --test tests/integration/js/` with:
 *
 * - BROADCAST_TEST_SERVE: a JSON array, the command that runs `broadcast serve`
 *   (for example `[".venv/bin/python", "-m", "broadcast_cli", "serve"]`);
 * - BROADCAST_TEST_REDIS_URL: the Redis every server here shares;
 * - BROADCAST_TEST_TIMEOUT_SCALE (optional): multiplies every timeout.
 *
 * Every process started here is killed when its test ends, and with SIGKILL
 * when this process exits, whatever happened.
 */
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import WebSocket from 'ws'

// Node 20 has no global WebSocket (without a flag); the client takes the global one.
globalThis.WebSocket = WebSocket

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

export const TIMEOUT_SCALE = Number(process.env.BROADCAST_TEST_TIMEOUT_SCALE ?? '1') || 1

/** `ms` scaled by BROADCAST_TEST_TIMEOUT_SCALE. @param {number} ms */
export function scaled (ms) {
  return ms * TIMEOUT_SCALE
}

function required (name, hint) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: ${hint} (or run .venv/bin/pytest tests/integration/test_js_client.py, which sets it)`)
  return value
}

/** The command that runs `broadcast serve`. @returns {string[]} */
function serveCommand () {
  const command = JSON.parse(required('BROADCAST_TEST_SERVE', 'a JSON array, the command that runs `broadcast serve`'))
  if (!Array.isArray(command) || command.length === 0 || !command.every((part) => typeof part === 'string')) {
    throw new Error('BROADCAST_TEST_SERVE must be a JSON array of strings')
  }
  return command
}

/** The Redis that the servers share. */
export function redisUrl () {
  return required('BROADCAST_TEST_REDIS_URL', 'the URL of a Redis the tests may write to')
}

/**
 * Wait until `predicate()` (which may be async) is truthy; fail after `timeoutMs` (scaled).
 * `what` says what was awaited: a string, or a function called on failure (to show the state then).
 * @param {() => unknown} predicate
 * @param {number} timeoutMs
 * @param {string | (() => string)} what
 */
export async function waitFor (predicate, timeoutMs, what) {
  const limit = scaled(timeoutMs)
  const deadline = Date.now() + limit
  for (;;) {
    if (await predicate()) return
    if (Date.now() > deadline) {
      const text = typeof what === 'function' ? what() : what
      throw new Error(`timed out after ${(limit / 1000).toFixed(1)} s waiting for ${text}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A TCP port of 127.0.0.1 that was free a moment ago. @returns {Promise<number>} */
export function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address())
      server.close(() => resolve(port))
    })
  })
}

/** A channel name no other test uses (the tests share one Redis). @param {string} stem */
export function uniqueChannel (stem) {
  return `${stem}.${process.pid}.${Math.random().toString(36).slice(2, 10)}`
}

/** @type {Set<import('node:child_process').ChildProcess>} */
const running = new Set()

process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL')
    } catch {}
  }
})

/**
 * A `broadcast serve` process on 127.0.0.1, on the shared Redis, that the test
 * may stop (SIGTERM), kill (SIGKILL) and start again on the same port.
 */
export class Server {
  /** @type {import('node:child_process').ChildProcess | null} */
  #child = null
  /** @type {Promise<{code: number | null, signal: string | null}> | null} */
  #exited = null
  #ended = false
  /** The last lines the process wrote on stderr (for failure messages). @type {string[]} */
  stderr = []

  /** @param {string} name @param {number} port @param {string[]} [args] more `broadcast serve` options */
  constructor (name, port, args = []) {
    this.name = name
    this.port = port
    this.args = args
  }

  /** Start a server on a free port and wait until it answers. @param {string} name @param {string[]} [args] */
  static async start (name, args = []) {
    const server = new Server(name, await freePort(), args)
    await server.start()
    return server
  }

  get httpUrl () {
    return `http://127.0.0.1:${this.port}`
  }

  get wsUrl () {
    return `ws://127.0.0.1:${this.port}/ws/broadcast`
  }

  get running () {
    return this.#child !== null && !this.#ended
  }

  /** Start the process (again) on this server's port; resolve when `GET /health` answers 200. */
  async start () {
    if (this.#child !== null) throw new Error(`${this.name} is already started`)
    const [executable, ...prefix] = serveCommand()
    const args = [
      ...prefix, '--host', '127.0.0.1', '--port', String(this.port), '--redis-url', redisUrl(),
      '--log-level', 'warning', ...this.args,
    ]
    // The environment is inherited: coverage's subprocess patch measures the server too.
    const child = spawn(executable, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
    this.#child = child
    this.#ended = false
    running.add(child)
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#ended = true
        running.delete(child)
        resolve({ code, signal })
      })
      child.once('error', (error) => { // it could not be started (no 'exit' follows)
        this.stderr.push(`cannot start ${executable}: ${error.message}`)
        this.#ended = true
        running.delete(child)
        resolve({ code: null, signal: null })
      })
    })
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (text) => {
      this.stderr.push(...text.split('\n').filter(Boolean))
      this.stderr.splice(0, Math.max(0, this.stderr.length - 100))
    })
    await waitFor(async () => {
      if (!this.running) throw new Error(`${this.name} exited before it answered:\n${this.stderr.join('\n')}`)
      try {
        const response = await fetch(`${this.httpUrl}/health`, { signal: AbortSignal.timeout(1000) })
        await response.arrayBuffer()
        return response.status === 200
      } catch {
        return false // not listening yet
      }
    }, 30_000, () => `${this.name} to answer GET /health on port ${this.port}:\n${this.stderr.join('\n')}`)
  }

  /** Stop it with SIGTERM (a graceful shutdown; SIGKILL if it lingers); resolve with how it exited. */
  async stop () {
    return this.#end('SIGTERM')
  }

  /** Kill it with SIGKILL, as a crash would; resolve with how it exited. */
  async kill () {
    return this.#end('SIGKILL')
  }

  /** @param {'SIGTERM' | 'SIGKILL'} signal */
  async #end (signal) {
    const child = this.#child
    const exited = this.#exited
    if (child === null || exited === null) return null
    if (this.running) child.kill(signal)
    let timer
    const lingering = new Promise((resolve) => { timer = setTimeout(() => resolve('lingering'), scaled(20_000)) })
    if (await Promise.race([exited, lingering]) === 'lingering') child.kill('SIGKILL')
    clearTimeout(timer)
    const status = await exited
    this.#child = null
    this.#exited = null
    return status
  }
}

/** Stop every server of `servers` that runs (SIGTERM, then SIGKILL if it lingers). @param {Array<Server | undefined>} servers */
export async function stopAll (servers) {
  await Promise.all(servers.filter(Boolean).map((server) => server.stop()))
}

/**
 * Publish one message through a server's HTTP API (`POST /publish`); resolve with its answer
 * (`{channel, seq, epoch, id, ts}`). Fails on anything but a 2xx.
 * @param {string} httpUrl @param {{channel: string, event: string, payload?: unknown, origin?: string}} message
 */
export async function publish (httpUrl, message) {
  const response = await fetch(`${httpUrl}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(message),
    signal: AbortSignal.timeout(scaled(10_000)),
  })
  const text = await response.text()
  if (!response.ok) throw new Error(`POST ${httpUrl}/publish answered ${response.status}: ${text}`)
  return JSON.parse(text)
}

/**
 * What one subscription received: the events, the seqs, the losses reported, the acks.
 * `subscribe(client, channel)` registers it.
 */
export class Received {
  /** @type {any[]} */ events = []
  /** @type {any[]} */ losses = []
  /** @type {any[]} */ acks = []
  /** @type {any[]} */ errors = []

  get seqs () {
    return this.events.map((event) => event.seq)
  }

  /** Fail unless the seqs are exactly 1…`last`, each once, in order; say what went wrong. @param {number} last */
  check (last) {
    const seqs = this.seqs
    if (seqs.length === last && seqs.every((seq, index) => seq === index + 1)) return
    const counts = new Map()
    for (const seq of seqs) counts.set(seq, (counts.get(seq) ?? 0) + 1)
    const missing = []
    for (let seq = 1; seq <= last; seq++) if (!counts.has(seq)) missing.push(seq)
    const duplicated = [...counts].filter(([, n]) => n > 1).map(([seq]) => seq)
    const reordered = seqs.filter((seq, index) => index > 0 && seq < seqs[index - 1]).length
    throw new Error(
      `received ${seqs.length} of ${last}: ${missing.length} lost [${missing.slice(0, 10)}], ` +
      `${duplicated.length} duplicated [${duplicated.slice(0, 10)}], ${reordered} reordered`,
    )
  }
}

/**
 * Subscribe `client` to `channel`, recording into a {@link Received}.
 * @param {import('../../../broadcast_cli/static/broadcast.js').BroadcastClient} client
 * @param {string} channel
 */
export function record (client, channel) {
  const received = new Received()
  const unsubscribe = client.subscribe(channel, (event) => received.events.push(event), {
    onUnrecovered: (info) => received.losses.push(info),
    onReady: (ack) => received.acks.push(ack),
    onError: (error) => received.errors.push(error),
  })
  return { received, unsubscribe }
}
