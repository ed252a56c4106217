/**
 * The optimistic-sync demo: an orders list kept in sync across browsers and tabs.
 *
 * - Creating an order shows it at once (optimistic), tells the other tabs over
 *   BroadcastChannel (`emitLocal`), and POSTs it. The server stores it, then
 *   broadcasts `order.created` with this client's id as `origin`.
 * - Every other browser and tab invalidates its list and refetches
 *   (`invalidateOn`); this tab ignores its own echo and keeps the server's answer.
 * - A rejected create rolls the optimistic row back, here and in the other tabs,
 *   and shows the error.
 *
 * `OrdersQuery` plays the part of a query cache (TanStack Query's, say): server
 * data under one key, plus optimistic rows on top.
 */
import { BroadcastClient, invalidateOn } from '/client.js'

const CHANNEL = 'orders'
const API = '/demo/api/orders'

/**
 * @typedef {{id: string, item: string, quantity: number, created_at: number}} Order
 */

/** The orders list: the server's orders, and optimistic rows not stored yet. */
class OrdersQuery {
  /** @type {Map<string, Order>} the server's orders (append-only in this demo) */
  saved = new Map()
  /** @type {Map<string, Order & {mine: boolean}>} optimistic rows */
  pending = new Map()
  loaded = false
  fetches = 0
  /** @type {Promise<void> | null} */
  #inflight = null
  #again = false
  /** @type {() => void} */
  onChange = () => {}

  /** Refetch (one request at a time; an invalidation during a fetch fetches once more). */
  invalidate () {
    if (this.#inflight !== null) {
      this.#again = true
      return this.#inflight
    }
    this.#inflight = (async () => {
      try {
        do {
          this.#again = false
          await this.#fetch()
        } while (this.#again)
      } finally {
        this.#inflight = null
      }
    })()
    return this.#inflight
  }

  async #fetch () {
    this.fetches += 1
    try {
      const response = await fetch(API, { headers: { Accept: 'application/json' } })
      if (!response.ok) throw new Error(`GET ${API}: ${response.status}`)
      const { orders } = await response.json()
      for (const order of orders) this.confirm(order, false)
      this.loaded = true
      this.onChange()
    } catch (error) {
      showNotice(`Could not load the orders (${error.message}); they will be refetched on the next change.`)
    }
  }

  /** @param {Order} order @param {boolean} [notify] */
  confirm (order, notify = true) {
    this.saved.set(order.id, order)
    this.pending.delete(order.id)
    if (notify) this.onChange()
  }

  /** @param {Order} order @param {boolean} mine */
  addPending (order, mine) {
    if (this.saved.has(order.id)) return
    this.pending.set(order.id, { ...order, mine })
    this.onChange()
  }

  /** @param {string} id */
  rollback (id) {
    if (this.pending.delete(id)) this.onChange()
  }

  /** Every row, newest first. */
  rows () {
    const rows = [
      ...[...this.saved.values()].map((order) => ({ ...order, status: 'saved' })),
      ...[...this.pending.values()].map((order) => ({ ...order, status: 'pending' })),
    ]
    return rows.sort((a, b) => b.created_at - a.created_at || a.id.localeCompare(b.id))
  }
}

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id))

/** @param {string} text */
function showError (text) {
  $('error').textContent = text
}

/** @param {string} text */
function showNotice (text) {
  $('notice').textContent = text
}

/** @param {string} text @param {string} [detail] */
function log (text, detail = '') {
  const item = document.createElement('li')
  const strong = document.createElement('strong')
  strong.textContent = text
  item.append(`${new Date().toLocaleTimeString()} `, strong, detail ? ` ${detail}` : '')
  const list = $('activity')
  list.prepend(item)
  while (list.children.length > 50) list.lastElementChild?.remove()
}

const client = new BroadcastClient('/ws/broadcast')
const query = new OrdersQuery()
/** @type {Array<{event: string, seq: number | null, local: boolean, own: boolean}>} what the tests read */
const events = []

function render () {
  const body = $('orders')
  const rows = query.rows()
  body.replaceChildren(...rows.map((order) => {
    const tr = document.createElement('tr')
    tr.dataset.orderId = order.id
    tr.dataset.status = order.status
    const cells = [
      order.item,
      String(order.quantity),
      new Date(order.created_at).toLocaleTimeString(),
    ].map((text, index) => {
      const td = document.createElement('td')
      td.textContent = text
      if (index === 1) td.className = 'num'
      return td
    })
    const status = document.createElement('td')
    const badge = document.createElement('span')
    badge.className = 'badge'
    badge.textContent = order.status === 'saved' ? 'saved' : 'saving…'
    status.append(badge)
    tr.append(...cells, status)
    return tr
  }))
  $('empty').textContent = !query.loaded && rows.length === 0 ? 'Loading…' : rows.length === 0 ? 'No orders yet.' : ''
  $('count').textContent = countText(rows)
}

/**
 * The heading's count: every row shown, the optimistic ones included, and how many of them are still saving.
 * @param {Array<{status: string}>} rows
 */
function countText (rows) {
  const saving = rows.filter((row) => row.status === 'pending').length
  const total = rows.length === 1 ? '1 order' : `${rows.length} orders`
  return saving ? `${total} (${saving} saving…)` : total
}
query.onChange = render

const ROLES = {
  leader: 'this tab holds the connection for all tabs',
  follower: 'through another tab’s connection',
  solo: 'this tab’s own connection',
}

function showState () {
  $('status').dataset.state = client.state
  $('state-text').textContent = client.state
  $('role-text').textContent = client.role ? `· ${ROLES[client.role]}` : ''
}
client.onStateChange((state) => {
  showState()
  log(`connection ${state}`)
})
client.onRoleChange(showState)

// Other tabs' optimistic rows, and the log.
client.subscribe(CHANNEL, (event) => {
  const own = event.origin === client.clientId
  events.push({ event: event.event, seq: event.seq ?? null, local: Boolean(event.local), own })
  const payload = /** @type {any} */ (event.payload)
  if (event.local && event.event === 'order.pending') query.addPending(payload, false)
  if (event.local && event.event === 'order.failed') query.rollback(payload.id)
  const where = event.local ? 'from another tab, before the server' : own ? 'the echo of this tab’s change: ignored' : 'refetching'
  log(event.local ? event.event : `${event.event} #${event.seq}`, `(${where})`)
}, {
  // Fetch once the subscription is acked: from then on no change can slip between the fetch and the events.
  onReady: () => query.invalidate(),
})

// The seed's useBroadcastInvalidation, in one call.
invalidateOn(client, { channel: CHANNEL, events: ['order.*'], keys: [['orders']] }, (keys, cause) => {
  if ('recovered' in cause) log('messages were missed', '(refetching everything)')
  query.invalidate()
})

/** @param {SubmitEvent} submit */
async function create (submit) {
  submit.preventDefault()
  const form = /** @type {HTMLFormElement} */ (submit.target)
  const data = new FormData(form)
  const order = {
    id: crypto.randomUUID(),
    item: String(data.get('item') ?? '').trim(),
    quantity: Number(data.get('quantity')),
    created_at: Date.now(),
  }
  showError('')
  showNotice('')
  query.addPending(order, true) // 1. optimistic: shown at once
  client.emitLocal(CHANNEL, 'order.pending', order) // 2. the other tabs show it too, without the server
  form.reset()
  try {
    const response = await fetch(API, { // 3. the server stores it, then broadcasts order.created
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ id: order.id, item: order.item, quantity: order.quantity, client_id: client.clientId }),
    })
    const answer = await response.json().catch(() => ({}))
    if (!response.ok) throw new Error(answer.message ?? `the server answered ${response.status}`)
    query.confirm(answer.order) // 4. the server's version replaces the optimistic row
    if (answer.warning) showNotice(answer.warning)
  } catch (error) {
    query.rollback(order.id) // 5. rejected: roll back, here and in the other tabs
    client.emitLocal(CHANNEL, 'order.failed', { id: order.id })
    showError(`Order “${order.item}” was not created: ${error.message}`)
    log('order rejected', `(${error.message})`)
  }
}

$('order-form').addEventListener('submit', create)
window.demo = { client, query, events }
showState()
render()
query.invalidate()
client.connect()
