'use strict';
// Paced drain seen by real pusher-js clients behind a load balancer.
//
// A 2-node cluster (the harness's own under INTEROP_CLUSTER=1, otherwise one this file
// starts with the same helper; skipped if redis-server is missing) with short drain
// timings. A tiny in-process TCP proxy stands in for the load balancer: each new
// connection goes to node A while A's GET /ready answers 200, else to node B. Six
// pusher-js clients connect through it (all land on A) and subscribe to one public
// channel; the `pusher` HTTP lib publishes numbered events through B every 50 ms.
// Node A gets SIGTERM, and the test checks: /ready on A turns 503 within 1 s, a raw
// WebSocket upgrade to A is answered HTTP 503, every client goes connecting -> connected
// with a new socket_id via the proxy to B, no numbers are missing within any one socket's
// stream, events keep arriving after the reconnect, and A exits on its own.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const { execFileSync } = require('node:child_process');

const h = require('./lib/harness');

const CLIENTS = 6;
const DRAIN_TOML = '[drain]\npre_drain_delay = 0.5\nwindow = 2\ntimeout = 8\n';

function haveRedis() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (_) {
    return false;
  }
}
const RUNNABLE = h.CLUSTER || (typeof h.startCluster === 'function' && haveRedis());

/** GET http://127.0.0.1:port/ready -> status code, or null on error/timeout (bounded). */
function readyStatus(port, timeout = 500) {
  return new Promise((resolve) => {
    const req = http.get({ host: h.HOST, port, path: '/ready', timeout, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => { req.destroy(); resolve(null); });
    req.on('error', () => resolve(null));
  });
}

/** The load balancer: new connections to A while A's /ready is 200, else to B. */
function startProxy(portA, portB) {
  const sockets = new Set();
  const routed = { A: 0, B: 0 };
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    client.pause();
    readyStatus(portA).then((status) => {
      if (client.destroyed) return;
      const toA = status === 200;
      routed[toA ? 'A' : 'B'] += 1;
      const upstream = net.connect(toA ? portA : portB, h.HOST);
      sockets.add(upstream);
      upstream.on('close', () => { sockets.delete(upstream); client.destroy(); });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, h.HOST, () => resolve({
      port: server.address().port,
      routed,
      close() {
        for (const s of sockets) s.destroy();
        return new Promise((r) => server.close(() => r()));
      },
    }));
  });
}

/** A raw WebSocket upgrade to port: resolves with the HTTP status code of the answer. */
function rawUpgradeStatus(port) {
  return h.waitFor(`raw WebSocket upgrade answer from :${port}`, (resolve, reject) => {
    const sock = net.connect(port, h.HOST, () => {
      sock.write(`GET /app/${h.APPS.main.key}?protocol=7&client=js&version=8.4.0&flash=false HTTP/1.1\r\n`
        + `Host: ${h.HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
        + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    });
    let buf = '';
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      buf += d;
      const eol = buf.indexOf('\r\n');
      if (eol >= 0) {
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf.slice(0, eol));
        if (m) resolve(Number(m[1])); else reject(new Error(`bad status line: ${buf.slice(0, eol)}`));
      }
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`connection closed before a status line (got ${JSON.stringify(buf)})`)));
    return () => sock.destroy();
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

let server = null;
let proxy = null;
const clients = [];

before(async () => {
  if (!RUNNABLE) return;
  server = h.CLUSTER
    ? await h.startServer({ extraToml: DRAIN_TOML })
    : await h.startCluster({ extraToml: DRAIN_TOML });
});

after(async () => {
  for (const c of clients) {
    try { c.disconnect(); } catch (_) { /* ignore */ }
  }
  if (proxy) await proxy.close();
  if (server) await server.stop();
});

test('SIGTERM drain: pusher-js clients behind a /ready-checking proxy move to the other node without gaps',
  { skip: RUNNABLE ? false : 'needs a cluster: redis-server not found' }, async (t) => {
    const [nodeA, nodeB] = server.nodes;
    assert.equal(await readyStatus(nodeA.port), 200, 'node A is ready before the drain');
    proxy = await startProxy(nodeA.port, nodeB.port);

    const channelName = h.uniq('drain');
    // Per client: every received number with the socket_id it arrived on, and state changes.
    const logs = [];
    for (let i = 0; i < CLIENTS; i += 1) {
      const c = h.makeClient({ port: proxy.port }, { label: `drain-${i}@proxy` });
      clients.push(c);
      const log = { got: [], states: [], client: c };
      logs.push(log);
      c.connection.bind('state_change', (s) => log.states.push(s.current));
    }
    const channels = await Promise.all(clients.map((c) => h.subscribed(c, channelName)));
    assert.equal(proxy.routed.A, CLIENTS, `all clients routed to A (${JSON.stringify(proxy.routed)})`);
    assert.equal(proxy.routed.B, 0);
    const firstIds = clients.map((c) => c.connection.socket_id);
    const waiters = new Set();
    channels.forEach((ch, i) => ch.bind('tick', (data) => {
      logs[i].got.push({ n: data.n, sid: clients[i].connection.socket_id });
      for (const w of [...waiters]) w();
    }));
    const until = (check, what, timeout) => h.waitFor(what, (resolve) => {
      const t = () => { const v = check(); if (v) resolve(v); };
      waiters.add(t);
      t();
      return () => waiters.delete(t);
    }, { timeout, clients, server });

    // Publisher: numbered events through node B, one every ~50 ms, in order.
    const api = server.http(h.APPS.main, { node: 1 });
    let publishing = true;
    let next = 0;
    const publishErrors = [];
    const publisher = (async () => {
      while (publishing) {
        const n = next;
        next += 1;
        try {
          await h.withTimeout(api.trigger(channelName, 'tick', { n }), `trigger ${n}`);
        } catch (e) {
          publishErrors.push(`${n}: ${e.message}`);
        }
        await sleep(50); // pacing, not synchronisation
      }
    })();

    try {
      // Every client gets events on its first socket before the drain starts.
      await until(() => logs.every((l) => l.got.length >= 3), 'every client receiving events before the drain');

      // Drain node A the way an orchestrator does.
      const exited = new Promise((r) => nodeA.proc.once('exit', (code, signal) => r({ code, signal })));
      const t0 = Date.now();
      nodeA.proc.kill('SIGTERM');

      // /ready flips to 503 within 1 s (polled: it is only observable by asking).
      let status = null;
      while (Date.now() - t0 < 1000) {
        status = await readyStatus(nodeA.port, 300);
        if (status === 503) break;
        await sleep(25);
      }
      assert.equal(status, 503, `A's /ready within 1 s of SIGTERM (last answer ${status})`);

      // A raw WebSocket upgrade straight to A is refused with HTTP 503.
      assert.equal(await rawUpgradeStatus(nodeA.port), 503, 'upgrade to the draining node');

      // Every client reconnects through the proxy (to B) with a new socket_id.
      await Promise.all(clients.map((c, i) => h.waitFor(`drain-${i} reconnected with a new socket_id`, (resolve) => {
        const check = () => {
          if (c.connection.state === 'connected' && c.connection.socket_id !== firstIds[i]) resolve();
        };
        c.connection.bind('state_change', check);
        check();
        return () => c.connection.unbind('state_change', check);
      }, { timeout: 10000, clients: [c], server })));
      for (const [i, l] of logs.entries()) {
        const k = l.states.indexOf('connecting');
        assert.ok(k >= 0 && l.states.indexOf('connected', k) > k,
          `drain-${i} went connecting -> connected (states: ${l.states.join(', ')})`);
      }
      assert.equal(proxy.routed.B, CLIENTS, `every reconnect routed to B (${JSON.stringify(proxy.routed)})`);

      // After the reconnect each client receives further events on its new socket.
      await until(() => logs.every((l, i) => l.got.filter((g) => g.sid === clients[i].connection.socket_id
        && g.sid !== firstIds[i]).length >= 3), 'every client receiving events after the reconnect', 5000);

      // A finishes its drain and exits by itself (drain timeout is 8 s).
      const ex = await h.withTimeout(exited, 'node A exiting after the drain', 10000);
      assert.deepEqual(ex, { code: 0, signal: null }, 'node A exit');
    } finally {
      publishing = false;
      await h.withTimeout(publisher, 'publisher stopping');
    }

    // No gap within any one socket's stream: consecutive numbers per socket_id.
    for (const [i, l] of logs.entries()) {
      const bySid = new Map();
      for (const g of l.got) {
        assert.ok(g.sid, `drain-${i}: event ${g.n} arrived with no socket_id`);
        if (!bySid.has(g.sid)) bySid.set(g.sid, []);
        bySid.get(g.sid).push(g.n);
      }
      t.diagnostic(`drain-${i}: ${[...bySid.values()].map((ns) => `${ns[0]}..${ns[ns.length - 1]} (${ns.length})`).join(' then ')}`);
      assert.equal(bySid.size, 2, `drain-${i}: events on exactly two sockets (${[...bySid.keys()].join(', ')})`);
      for (const [sid, ns] of bySid) {
        for (let k = 1; k < ns.length; k += 1) {
          assert.equal(ns[k], ns[k - 1] + 1, `drain-${i} socket ${sid}: ${ns[k - 1]} followed by ${ns[k]} (${ns.join(',')})`);
        }
      }
    }
    assert.deepEqual(publishErrors, [], 'every publish through B succeeded');
  });
