// A minimal live broadcast hub on Node's `ws`, the peer of Steward's `/api/v1/live` in the
// live fan-out benchmark (crates/steward/examples/monitor_bench.rs, `make bench-live`).
//
// It does the same batching as Steward's hub (crates/steward-api/src/metrics/live.rs): per
// server the last snapshot's points and 60 CPU values; clients send
// {"type":"subscribe","fleet":true} and get a `snapshot` of every server (with sparklines, in
// parts of at most 64 KiB of servers as Steward sends it),
// then at most one `update` frame per 250 ms tick carrying the servers that changed since the
// last tick, in the same JSON shape (ServerMetrics). The frame is encoded once per tick and
// sent to every subscribed client; a client with more than 8 frames unsent is dropped.
//
// Fed on `/feed` by the benchmark: {"type":"meta","servers":[{id,name,tags}]} once, then
// {"type":"sample","id","ts","points":[[name,label,value],…]} per server and second (the
// points Steward derives from the same snapshot).
//
// node hub.js <port>
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 7081);
const TICK_MS = 250;
const SPARK_LEN = 60;
const QUEUE_FRAMES = 8;
const DISK_FULL_PCT = 95;
const SNAPSHOT_PART_BYTES = 64 * 1024;

const views = new Map(); // id -> {meta, points, lastTs, spark}
let changed = new Set();
const clients = new Set(); // subscribed sockets

function value(points, name) {
  for (const p of points) if (p[0] === name && p[1] === '' && Number.isFinite(p[2])) return p[2];
  return null;
}
function sum(points, name) {
  let any = false, total = 0;
  for (const p of points) if (p[0] === name && Number.isFinite(p[2])) { any = true; total += p[2]; }
  return any ? total : null;
}
function fullest(points) {
  let best = null;
  for (const p of points) if (p[0] === 'disk.used_pct' && Number.isFinite(p[2]) && (!best || p[2] > best[2])) best = p;
  return best;
}
function status(v, now) {
  if (v.lastTs === null) return 'unknown';
  if (now - v.lastTs > Math.max(3 * v.meta.interval_secs * 1000, 30000)) return 'offline';
  const d = fullest(v.points);
  const failed = value(v.points, 'systemd.failed_units');
  return (d && d[2] >= DISK_FULL_PCT) || (failed !== null && failed > 0) ? 'degraded' : 'online';
}
function summary(id, v, now, spark) {
  const d = fullest(v.points);
  const s = {
    id, name: v.meta.name, tags: v.meta.tags, monitoring: 'agent', interval_secs: v.meta.interval_secs,
    status: status(v, now),
    last_sample_at: v.lastTs === null ? null : new Date(v.lastTs).toISOString(),
    cpu_pct: value(v.points, 'cpu.usage'), load1: value(v.points, 'load.1'),
    mem_used_pct: value(v.points, 'mem.used_pct'),
    disk_used_pct: d ? d[2] : null, disk_mount: d ? d[1] : null,
    net_rx_bps: sum(v.points, 'net.rx_bytes'), net_tx_bps: sum(v.points, 'net.tx_bytes'),
    failed_units: value(v.points, 'systemd.failed_units'), checks_down: 0,
  };
  if (spark) s.sparkline = v.spark.slice();
  return s;
}

function send(ws, text) {
  // Same policy as Steward: a client that has 8 frames waiting is dropped.
  if (ws.bufferedAmount > QUEUE_FRAMES * Math.max(text.length, 1)) { ws.terminate(); clients.delete(ws); return; }
  ws.send(text);
}

setInterval(() => {
  if (changed.size === 0 || clients.size === 0) { changed.clear(); return; }
  const now = Date.now();
  const servers = [];
  for (const id of changed) servers.push(summary(id, views.get(id), now, false));
  changed = new Set();
  const text = JSON.stringify({ type: 'update', at: new Date(now).toISOString(), servers, removed: [] });
  for (const ws of clients) send(ws, text);
}, TICK_MS);

const server = http.createServer((req, res) => { res.writeHead(426); res.end(); });
const live = new WebSocketServer({ noServer: true, perMessageDeflate: false });
const feed = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 << 20 });
server.on('upgrade', (req, socket, head) => {
  const target = req.url === '/feed' ? feed : live;
  target.handleUpgrade(req, socket, head, (ws) => target.emit('connection', ws, req));
});

live.on('connection', (ws) => {
  ws.on('message', (data) => {
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (msg.type === 'subscribe' && msg.fleet === true) {
      const now = Date.now();
      const at = JSON.stringify(new Date(now).toISOString());
      const parts = [''];
      for (const [id, v] of views) {
        const json = JSON.stringify(summary(id, v, now, true));
        const last = parts.length - 1;
        if (parts[last] !== '' && parts[last].length + json.length > SNAPSHOT_PART_BYTES) parts.push(json);
        else parts[last] += (parts[last] === '' ? '' : ',') + json;
      }
      parts.forEach((servers, i) =>
        ws.send(`{"type":"snapshot","part":${i},"parts":${parts.length},"at":${at},"servers":[${servers}]}`));
      clients.add(ws);
    }
  });
  ws.on('close', () => clients.delete(ws));
  ws.on('error', () => clients.delete(ws));
});

feed.on('connection', (ws) => {
  ws.on('message', (data) => {
    const msg = JSON.parse(data);
    if (msg.type === 'meta') {
      for (const m of msg.servers) {
        views.set(m.id, { meta: { name: m.name, tags: m.tags, interval_secs: 1 }, points: [], lastTs: null, spark: [] });
      }
    } else if (msg.type === 'sample') {
      const v = views.get(msg.id);
      if (!v || (v.lastTs !== null && msg.ts <= v.lastTs)) return;
      v.points = msg.points;
      v.lastTs = msg.ts;
      const cpu = value(msg.points, 'cpu.usage');
      if (cpu !== null) { v.spark.push(cpu); if (v.spark.length > SPARK_LEN) v.spark.shift(); }
      changed.add(msg.id);
    }
  });
});

server.listen(port, '127.0.0.1', () => console.log(`live-node hub on 127.0.0.1:${port}`));
