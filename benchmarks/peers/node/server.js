// Peer: Node's `ws` speaking broadcast-cli's protocol v1 subset (see ../peer_protocol.py).
//
//   node benchmarks/peers/node/server.js [--port 0]
//
// One http.Server serves POST /publish and upgrades /ws/broadcast. A published
// frame is encoded once (a Buffer) and sent with ws.send() to every subscriber of
// its channel, the idiomatic broadcast of ws's README. Prints
// {"ws": …, "http": …, "pid": …} on stdout once listening.
'use strict';

const crypto = require('crypto');
const http = require('http');
const { WebSocketServer } = require('ws');

const EPOCH = (BigInt(Date.now()) * 1000n).toString(16);
const channels = new Map(); // channel -> Set of sockets
const seqs = new Map(); // channel -> last seq

function position(channel) {
  return { seq: seqs.get(channel) || 0, epoch: EPOCH };
}

function publish(body) {
  const data = JSON.parse(body);
  const items = Array.isArray(data) ? data : [data];
  const receipts = [];
  for (const item of items) {
    const channel = item.channel;
    const seq = (seqs.get(channel) || 0) + 1;
    seqs.set(channel, seq);
    const id = crypto.randomBytes(12).toString('hex');
    const ts = Date.now();
    const frame = Buffer.from(JSON.stringify({
      channel, event: item.event, payload: item.payload === undefined ? null : item.payload, seq, epoch: EPOCH, id, ts,
    }));
    const subscribers = channels.get(channel);
    if (subscribers) {
      for (const socket of subscribers) socket.send(frame, { binary: false });
    }
    receipts.push({ channel, seq, epoch: EPOCH, id, ts });
  }
  return JSON.stringify(Array.isArray(data) ? receipts : receipts[0]);
}

const server = http.createServer((request, response) => {
  if (request.method !== 'POST' || request.url !== '/publish') {
    response.writeHead(404, { 'content-type': 'application/json' });
    response.end('{"type":"error","code":"not_found"}');
    return;
  }
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    let answer;
    try {
      answer = publish(Buffer.concat(chunks));
    } catch (error) {
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ type: 'error', code: 'invalid_request', message: String(error) }));
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(answer);
  });
});

const wss = new WebSocketServer({ server, path: '/ws/broadcast', perMessageDeflate: false });
wss.on('connection', (socket) => {
  const mine = new Set();
  socket.on('message', (data) => {
    let request;
    try {
      request = JSON.parse(data);
    } catch (error) {
      return;
    }
    if (!request || !Array.isArray(request.subscribe)) return;
    const positions = {};
    for (const channel of request.subscribe) {
      if (typeof channel !== 'string') continue;
      let subscribers = channels.get(channel);
      if (!subscribers) channels.set(channel, (subscribers = new Set()));
      subscribers.add(socket);
      mine.add(channel);
      positions[channel] = position(channel);
    }
    if (request.id !== undefined) socket.send(JSON.stringify({ type: 'ack', id: request.id, channels: positions }));
  });
  socket.on('close', () => {
    for (const channel of mine) channels.get(channel)?.delete(socket);
  });
});

const portIndex = process.argv.indexOf('--port');
const port = portIndex > 0 ? Number(process.argv[portIndex + 1]) : 0;
server.listen({ port, host: '127.0.0.1', backlog: 2048 }, () => {
  const bound = server.address().port;
  process.stdout.write(JSON.stringify({
    ws: `ws://127.0.0.1:${bound}/ws/broadcast`, http: `http://127.0.0.1:${bound}`, pid: process.pid,
  }) + '\n');
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const socket of wss.clients) socket.terminate();
    server.close(() => process.exit(0));
  });
}
