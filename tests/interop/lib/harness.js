'use strict';
// Interop harness: starts a real `rtc serve` (or, with INTEROP_CLUSTER=1, a private
// redis-server and a 2-node rtc cluster), builds real pusher-js clients and real `pusher`
// (pusher-http-node) API clients against it, and offers bounded waits.
// Only 127.0.0.1 is ever contacted. Every wait has a timeout (default 5 s).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const crypto = require('node:crypto');
const net = require('node:net');
const nodeTest = require('node:test');

const PusherJS = require('pusher-js');
const PusherHTTP = require('pusher');

const HOST = '127.0.0.1';
const TIMEOUT = Number(process.env.INTEROP_TIMEOUT_MS || 5000);
const START_TIMEOUT = Number(process.env.INTEROP_START_TIMEOUT_MS || 10000);
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const CONFIG_TEMPLATE = path.join(__dirname, 'server.toml');
/** INTEROP_CLUSTER=1: every server is 2 rtc nodes over a private redis-server. */
const CLUSTER = process.env.INTEROP_CLUSTER === '1';
/** INTEROP_ENGINE=redis-cluster: the cluster mode runs over a 3-master Redis Cluster. */
/** Bound on the wait for both nodes to see each other (live_nodes == 2, pub/sub up). */
const CLUSTER_READY_TIMEOUT = Number(process.env.INTEROP_CLUSTER_READY_MS || 15000);
/**
 * Bound on polling a channel query until it shows a change made on the other node.
 * Those are answered from shared state the other node updates within ~100 ms
 * (subscriber counts, members) or ~1 s (connection counts, from heartbeats).
 */
const SETTLE_TIMEOUT = Number(process.env.INTEROP_SETTLE_MS || TIMEOUT);
/** Cluster mode: the node (1 or 2) every `pusher` HTTP-lib call goes to; see startCluster. */
const CLUSTER_HTTP_NODE = Number(process.env.INTEROP_CLUSTER_HTTP_NODE || 2);
/** lib/server.toml's [server] admin_token: /admin/stats wants it as a Bearer token. */
const ADMIN_TOKEN = 'test-admin-token';

/** The apps declared in lib/server.toml. */
const APPS = Object.freeze({
  main: Object.freeze({ id: '100001', key: 'app-key', secret: 'app-secret' }),
  noClientEvents: Object.freeze({ id: '100002', key: 'app-key-2', secret: 'app-secret-2' }),
});

function rtcBin() {
  return process.env.RTC_BIN || path.join(REPO_ROOT, 'target', 'debug', 'rtc');
}

let nameCounter = 0;
/** A channel/user name unique within this process run: `${prefix}-<pid>-<n>`. */
function uniq(prefix) {
  nameCounter += 1;
  return `${prefix}-${process.pid}-${nameCounter}`;
}

/** 32 random bytes, base64: a master key for private-encrypted channels. */
function randomMasterKey() {
  return crypto.randomBytes(32).toString('base64');
}

// ---------------------------------------------------------------------------
// bounded waits

/**
 * Runs setup(resolve, reject) and waits for it to settle, at most `timeout` ms.
 * setup may return a cleanup function, called once whatever the outcome.
 * On timeout the error lists the recent frames of `clients` and the server's stderr.
 */
function waitFor(label, setup, { timeout = TIMEOUT, clients = [], server = null } = {}) {
  return new Promise((resolve, reject) => {
    let done = false;
    let cleanup = null;
    const finish = (fn, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (cleanup) {
        try { cleanup(); } catch (_) { /* ignore */ }
      }
      fn(value);
    };
    const timer = setTimeout(() => {
      finish(reject, new Error(`timed out after ${timeout} ms waiting for ${label}${diagnostics(clients, server)}`));
    }, timeout);
    let c;
    try {
      c = setup((v) => finish(resolve, v), (e) => finish(reject, e));
    } catch (e) {
      finish(reject, e);
      return;
    }
    if (typeof c === 'function') {
      if (done) c(); else cleanup = c;
    }
  });
}

/** Bounds any promise (e.g. an HTTP call) by `timeout` ms. */
function withTimeout(promise, label, timeout = TIMEOUT) {
  return waitFor(label, (resolve, reject) => { promise.then(resolve, reject); }, { timeout });
}

/**
 * Records every emission of `event` on a pusher-js emitter (channel, client, user,
 * watchlist, connection). Items are the callback argument arrays, e.g. [data, metadata].
 */
class Recorder {
  constructor(emitter, event, { client = null, label = event } = {}) {
    this.emitter = emitter;
    this.event = event;
    this.client = client;
    this.label = label;
    this.items = [];
    this.listeners = new Set();
    this.cb = (...args) => {
      this.items.push(args);
      for (const l of [...this.listeners]) l();
    };
    emitter.bind(event, this.cb);
  }

  /** Resolves with the first truthy value of check(items); re-checked on every emission. */
  until(check, what, opts = {}) {
    return waitFor(`${what} (${this.label})`, (resolve) => {
      const test = () => {
        const v = check(this.items);
        if (v) resolve(v);
      };
      this.listeners.add(test);
      test();
      return () => this.listeners.delete(test);
    }, { clients: this.client ? [this.client] : [], ...opts });
  }

  /** Resolves with the first recorded argument array whose first argument satisfies pred. */
  first(pred = () => true, what = 'matching event', opts) {
    return this.until((items) => items.find((args) => pred(...args)), what, opts);
  }

  /** Resolves with the items once at least n were recorded. */
  count(n, opts) {
    return this.until((items) => (items.length >= n ? items.slice() : null), `${n} x ${this.event}`, opts);
  }

  data() {
    return this.items.map((args) => args[0]);
  }

  stop() {
    this.emitter.unbind(this.event, this.cb);
    this.listeners.clear();
  }
}

function record(emitter, event, opts) {
  return new Recorder(emitter, event, opts);
}

// ---------------------------------------------------------------------------
// diagnostics

function diagnostics(clients, server) {
  let out = '';
  for (const c of clients) {
    if (!c || !c.__interop) continue;
    const frames = c.__interop.frames.slice(-20).map((f) => `    ${f}`).join('\n');
    out += `\n  client ${c.__interop.label} (state=${c.connection.state}, socket_id=${c.connection.socket_id}) recent frames:\n${frames || '    (none)'}`;
  }
  if (server) out += `\n  server stderr tail:\n${server.stderrTail(1500)}`;
  return out;
}

function short(v) {
  let s;
  try { s = JSON.stringify(v); } catch (_) { s = String(v); }
  return s && s.length > 400 ? `${s.slice(0, 400)}...` : s;
}

// ---------------------------------------------------------------------------
// server

/** Child processes still running; killed on process exit whatever happens. */
const children = new Set();
process.on('exit', () => {
  for (const p of children) {
    try { p.kill('SIGKILL'); } catch (_) { /* ignore */ }
  }
});

/**
 * Spawns `cmd args` and resolves once a stdout line matches `ready` (with the match),
 * at most `timeout` ms. Returns a handle: { proc, match, stderrTail(), stdoutText(),
 * exited(), kill() }. Fails with the process's output when it exits or times out first.
 */
async function launch(cmd, args, { label, ready, timeout = START_TIMEOUT }) {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  children.add(proc);
  let stderr = '';
  let stdout = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 400000) stderr = stderr.slice(-200000);
  });
  const rl = readline.createInterface({ input: proc.stdout });
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      children.delete(proc);
      resolve(exited);
    });
  });
  const handle = {
    label,
    proc,
    match: null,
    stderrTail(n = 3000) { return stderr.slice(-n); },
    stdoutText() { return stdout; },
    exited() { return exited; },
    async kill() {
      if (!exited) {
        proc.kill('SIGKILL');
        await Promise.race([exitPromise, new Promise((r) => setTimeout(r, 3000).unref())]);
      }
      rl.close();
    },
  };
  handle.match = await new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proc.kill('SIGKILL');
      err.message += `\n--- ${label} stdout ---\n${stdout}--- ${label} stderr (tail) ---\n${stderr.slice(-4000)}`;
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(
      `${label} did not print a line matching ${ready} within ${timeout} ms`)), timeout);
    rl.on('line', (line) => {
      if (stdout.length < 20000) stdout += `${line}\n`;
      const m = ready.exec(line);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve(m);
      }
    });
    proc.on('exit', (code, signal) => fail(new Error(`${label} exited before it was ready (code ${code}, signal ${signal})`)));
    proc.on('error', (e) => fail(e));
  });
  return handle;
}

const LISTENING = /^rtc listening on http:\/\/127\.0\.0\.1:(\d+)/;

function writeConfig(extraToml) {
  const bin = rtcBin();
  if (!fs.existsSync(bin)) {
    throw new Error(`rtc binary not found at ${bin}: run \`cargo build\` in the repo root, or set RTC_BIN`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtc-interop-'));
  const cfg = path.join(dir, 'rtc.toml');
  fs.writeFileSync(cfg, fs.readFileSync(CONFIG_TEMPLATE, 'utf8') + (extraToml ? `\n${extraToml}\n` : ''));
  return { bin, dir, cfg };
}

/** `rtc serve --config cfg --host 127.0.0.1 --port 0 ...extra`; the handle gets `.port`. */
async function launchRtc(bin, cfg, extraArgs = [], label = 'rtc') {
  const node = await launch(bin, ['serve', '--config', cfg, '--host', HOST, '--port', '0', ...extraArgs], {
    label,
    ready: LISTENING,
  });
  node.port = Number(node.match[1]);
  return node;
}

/**
 * Starts `rtc serve` on an ephemeral port with lib/server.toml (plus extraToml appended),
 * or, with INTEROP_CLUSTER=1, a 2-node cluster (see startCluster) with the same interface.
 * Returns { port, mode, nodes, stop(), stderrTail(), pick(), client(opts), http(app, opts),
 * track(pusherJsClient), settle(check, label) }.
 */
async function startServer(opts = {}) {
  if (CLUSTER) return startCluster(opts);
  const { bin, dir, cfg } = writeConfig(opts.extraToml);
  const node = await launchRtc(bin, cfg, [], 'rtc');
  node.name = 'rtc';
  const server = serverApi({ mode: 'single', nodes: [node], httpNode: node, configPath: cfg, dir });
  server.proc = node.proc;
  server.exited = () => node.exited();
  return server;
}

/** A free TCP port on 127.0.0.1 (bound then released; redis-server binds it next). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A free port for a cluster-enabled redis-server, with its cluster bus port (10000 higher;
 * redis-server refuses a port above 55535) free too. Both lie below the kernel's ephemeral
 * range, so no outgoing connection or port-0 listener can take one between this pick and
 * redis-server's bind (a node that loses that race exits at once). Picks go in turn from a
 * per-process start, so test files running side by side rarely try the same port.
 */
let clusterPortsTaken = 0;
async function clusterPort() {
  const portFree = (port) => new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]) || 32768;
  } catch (_) { /* not Linux: the default range */ }
  const low = 10000;
  const span = Math.min(ephemeralLow - 10000, 55536) - low;
  for (let i = 0; i < span; i += 1) {
    const port = low + ((process.pid * 7919 + clusterPortsTaken) % span);
    clusterPortsTaken += 1;
    if (await portFree(port) && await portFree(port + 10000)) return port;
  }
  throw new Error('no free port pair (P, P + 10000) below the ephemeral range for a Redis Cluster node');
}

/** A private redis-server on a free loopback port, no persistence. */
async function startRedis() {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await freePort();
    try {
      const redis = await launch('redis-server', [
        '--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no',
        '--protected-mode', 'yes', '--loglevel', 'notice',
      ], { label: `redis-server :${port}`, ready: /Ready to accept connections/ });
      redis.port = port;
      return redis;
    } catch (e) {
      lastErr = e; // most likely the port was taken between freePort() and the bind: retry
    }
  }
  throw lastErr;
}

/**
 * INTEROP_ENGINE=redis-cluster: three cluster-enabled redis-servers on free loopback
 * ports in `dir`, joined by `redis-cli --cluster create`, polled (bounded) until every
 * node says cluster_state:ok. Returns a handle like startRedis's, with `url` the
 * `redis-cluster://` seeds and `kill()` stopping all three.
 */
async function startRedisCluster(dir) {
  const { execFileSync } = require('node:child_process');
  const servers = [];
  try {
    for (let i = 0; i < 3; i += 1) {
      const port = await clusterPort();
      const s = await launch('redis-server', [
        '--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir,
        '--cluster-node-timeout', '2000', '--loglevel', 'notice',
      ], { label: `redis-server (cluster) :${port}`, ready: /Ready to accept connections/ });
      s.port = port;
      servers.push(s);
    }
    const hosts = servers.map((s) => `${HOST}:${s.port}`);
    execFileSync('redis-cli', ['--cluster', 'create', ...hosts, '--cluster-yes'], { stdio: 'ignore', timeout: 20000 });
    const deadline = Date.now() + 20000;
    for (const s of servers) {
      for (;;) {
        const info = execFileSync('redis-cli', ['-h', HOST, '-p', String(s.port), 'cluster', 'info'], { timeout: 2000 }).toString();
        if (info.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error(`redis cluster :${s.port} not ok: ${info.slice(0, 200)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return {
      url: `redis-cluster://${hosts.join(',')}`,
      servers,
      label: 'redis cluster',
      stderrTail: (n) => servers.map((s) => s.stderrTail(n)).join('\n'),
      stdoutText: () => servers.map((s) => s.stdoutText()).join('\n'),
      async kill() { for (const s of servers) await s.kill(); },
    };
  } catch (e) {
    for (const s of servers) await s.kill();
    throw e;
  }
}

/**
 * INTEROP_ENGINE=nats: a private `nats-server -js` on a free loopback port (its store in
 * `dir`) in place of redis-server; the nodes then join with `--bus nats://…`.
 */
async function startNats(dir) {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await freePort();
    try {
      // nats-server logs to stderr; `launch` waits for a stdout line: exec with 2>&1.
      const nats = await launch('sh', ['-c', 'exec "$0" "$@" 2>&1', process.env.INTEROP_NATS_SERVER || 'nats-server',
        '-js', '-a', HOST, '-p', String(port), '-sd', path.join(dir, `nats-${port}`),
      ], { label: `nats-server :${port}`, ready: /Server is ready/ });
      nats.port = port;
      nats.url = `nats://${HOST}:${port}`;
      return nats;
    } catch (e) {
      lastErr = e; // most likely the port was taken between freePort() and the bind: retry
    }
  }
  throw lastErr;
}

/** GET /admin/stats of a node (bounded); resolves with the parsed JSON. */
async function adminStats(port) {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), 2000);
  try {
    const res = await fetch(`http://${HOST}:${port}/admin/stats`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      signal: ac.signal,
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET /admin/stats: ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text);
  } finally {
    clearTimeout(t);
  }
}

/**
 * INTEROP_CLUSTER=1: a private redis-server, then nodes n1 and n2 of cluster
 * `interop-<random>` (`--redis-url redis://127.0.0.1:P --cluster ... --node-id nX`), and a
 * bounded wait until each node's /admin/stats says live_nodes == 2, pubsub.connected and
 * state "serving".
 *
 * Spreading: new pusher-js clients alternate n1, n2, n1, ... and the alternation restarts
 * at n1 for every test (useServer installs a beforeEach), so the first client of a test is
 * on n1 and the second on n2. Every `pusher` HTTP-lib call of a test goes to ONE node,
 * n2 by default (INTEROP_CLUSTER_HTTP_NODE=1 flips it): the first client of every test is
 * then on the other node than the API calls, and the "marker" technique (an event sent
 * after the one that must not arrive, through the same path) stays valid, since events
 * published by one node reach each other node in publish order.
 */
async function startCluster(opts = {}) {
  const { bin, dir, cfg } = writeConfig(opts.extraToml);
  const cluster = `interop-${crypto.randomBytes(5).toString('hex')}`;
  let redis = null;
  const nodes = [];
  try {
    const engine = process.env.INTEROP_ENGINE || 'redis';
    redis = engine === 'redis-cluster' ? await startRedisCluster(dir)
      : engine === 'nats' ? await startNats(dir) : await startRedis();
    const url = redis.url || `redis://${HOST}:${redis.port}`;
    const started = await Promise.allSettled(['n1', 'n2'].map((id) => launchRtc(bin, cfg,
      ['--redis-url', url, '--cluster', cluster, '--node-id', id], `rtc ${id}`)));
    for (const r of started) if (r.status === 'fulfilled') nodes.push(r.value);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    nodes[0].name = 'n1';
    nodes[1].name = 'n2';
    await waitClusterReady(nodes);
  } catch (e) {
    for (const n of nodes) await n.kill();
    if (redis) await redis.kill();
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const httpNode = nodes[CLUSTER_HTTP_NODE === 1 ? 0 : 1];
  const server = serverApi({ mode: 'cluster', nodes, httpNode, configPath: cfg, dir, redis, cluster });
  server.proc = nodes[0].proc;
  server.exited = () => nodes.map((n) => n.exited()).find(Boolean) || null;
  return server;
}

/** Polls both nodes' /admin/stats until they see each other, at most CLUSTER_READY_TIMEOUT. */
async function waitClusterReady(nodes) {
  const deadline = Date.now() + CLUSTER_READY_TIMEOUT;
  const ok = (s) => s && s.live_nodes === nodes.length && s.pubsub && s.pubsub.connected === true
    && s.state === 'serving';
  let last = [];
  for (;;) {
    last = await Promise.all(nodes.map((n) => adminStats(n.port).catch((e) => ({ error: String(e) }))));
    if (last.every(ok)) return;
    const dead = nodes.find((n) => n.exited());
    if (dead) throw new Error(`${dead.label} exited while the cluster formed\n${dead.stderrTail(3000)}`);
    if (Date.now() > deadline) {
      const show = last.map((s, i) => `  ${nodes[i].label}: ${short(s && !s.error
        ? { state: s.state, live_nodes: s.live_nodes, pubsub: s.pubsub } : s)}`).join('\n');
      throw new Error(`cluster not ready within ${CLUSTER_READY_TIMEOUT} ms `
        + `(want live_nodes == ${nodes.length}, pubsub.connected, state serving):\n${show}\n`
        + `${nodes.map((n) => `--- ${n.label} stderr ---\n${n.stderrTail(2000)}`).join('\n')}`);
    }
    // nothing to await: the registry is only visible by polling, bounded by the deadline
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The object tests use, whatever the mode. */
function serverApi({ mode, nodes, httpNode, configPath, dir, redis = null, cluster = null }) {
  const clients = new Set();
  let turn = 0;
  const server = {
    mode,
    cluster,
    nodes,
    redis,
    /** The port of the first node (single mode: the server). */
    port: nodes[0].port,
    configPath,
    stderrTail(n = 3000) {
      if (nodes.length === 1) return nodes[0].stderrTail(n);
      return nodes.map((nd) => `--- ${nd.label} ---\n${nd.stderrTail(Math.ceil(n / nodes.length))}`).join('\n');
    },
    /** The node the next client goes to: alternates in cluster mode. */
    pick() {
      const node = nodes[turn % nodes.length];
      turn += 1;
      return node;
    },
    /** Restart the alternation at the first node (called before every test). */
    resetRotation() { turn = 0; },
    /** The node that `pusher` HTTP-lib calls go to. */
    httpNode,
    /**
     * A real pusher-js client connected to this server; see makeClient. opts.node (0 or 1)
     * pins a cluster node; otherwise the next one in the rotation.
     */
    client(opts = {}) {
      const node = opts.node !== undefined ? nodes[opts.node % nodes.length] : server.pick();
      const c = makeClient({ port: node.port }, {
        ...opts,
        label: nodes.length > 1 ? `${opts.label || defaultLabel(opts)}@${node.name}` : opts.label,
      });
      c.__interop.node = node.name;
      clients.add(c);
      return c;
    },
    /** Registers a pusher-js client built elsewhere (e.g. by Laravel Echo) for teardown. */
    track(c) {
      clients.add(c);
      return c;
    },
    /** A real `pusher` HTTP API client for this server (cluster: for httpNode, or opts.node). */
    http(app = APPS.main, opts = {}) {
      const { node: pin, ...rest } = opts;
      const node = pin !== undefined ? nodes[pin % nodes.length] : httpNode;
      return httpClient({ port: node.port }, app, rest);
    },
    /**
     * Runs `check` (async, throws on mismatch) until it passes. Single node: once, answers
     * are immediate. Cluster: channel queries come from shared state that the other node
     * updates within ~100 ms (~1 s for connection counts), so it is retried every 50 ms for
     * at most SETTLE_TIMEOUT ms, then the last failure is thrown.
     */
    async settle(check, label = 'query') {
      if (nodes.length === 1) return check();
      const deadline = Date.now() + SETTLE_TIMEOUT;
      for (;;) {
        try {
          return await check();
        } catch (e) {
          if (Date.now() > deadline) {
            e.message = `${label}: still failing after ${SETTLE_TIMEOUT} ms of polling (cluster): ${e.message}`;
            throw e;
          }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      for (const c of clients) {
        try { c.disconnect(); } catch (_) { /* ignore */ }
      }
      clients.clear();
      for (const nd of nodes) await nd.kill();
      if (redis) await redis.kill();
      if (process.env.INTEROP_LOG_DIR) keepLogs(process.env.INTEROP_LOG_DIR, mode, [...nodes, ...(redis ? [redis] : [])]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** INTEROP_LOG_DIR=dir: each node's stderr (last ~200 KB) as <dir>/<mode>-<file>-<node>.log. */
function keepLogs(dir, mode, procs) {
  const file = path.basename((require.main && require.main.filename) || process.argv[1] || 'interop', '.js');
  fs.mkdirSync(dir, { recursive: true });
  for (const p of procs) {
    const who = (p.name || p.label || 'proc').replace(/[^\w.-]+/g, '_');
    fs.writeFileSync(path.join(dir, `${mode}-${file}-${who}.log`), `${p.stdoutText()}${p.stderrTail(400000)}`);
  }
}

function defaultLabel(opts) {
  const app = opts.app || APPS.main;
  return opts.user ? `user:${opts.user.id}` : `app:${app.key}`;
}

// ---------------------------------------------------------------------------
// clients

/** A `pusher` (pusher-http-node) client aimed at the server's HTTP API. */
function httpClient(server, app = APPS.main, opts = {}) {
  return new PusherHTTP({
    appId: app.id,
    key: app.key,
    secret: app.secret,
    host: HOST,
    port: String(server.port),
    useTLS: false,
    timeout: TIMEOUT,
    ...opts,
  });
}

/**
 * A real pusher-js (Node build) client. Channel and user auth are answered in-process by
 * pusher-js's customHandler, signed with the `pusher` lib exactly as a Laravel
 * /broadcasting/auth endpoint would.
 *
 * opts:
 *  - app: one of APPS (default APPS.main)
 *  - user: { id, info, watchlist } used for presence channel_data and for signin user_data
 *  - encryptionMasterKeyBase64: needed for private-encrypted channels
 *  - channelAuth(socketId, channelName, signer): return an auth object to override the signer
 *  - userAuth(socketId, signer): return {auth, user_data} to override the signin signer
 *  - label: name used in diagnostics
 */
function makeClient(server, opts = {}) {
  const app = opts.app || APPS.main;
  const signer = new PusherHTTP({
    appId: app.id,
    key: app.key,
    secret: app.secret,
    host: HOST,
    port: String(server.port),
    useTLS: false,
    encryptionMasterKeyBase64: opts.encryptionMasterKeyBase64,
  });
  const user = opts.user || null;

  const client = new PusherJS(app.key, {
    cluster: 'mt1',
    wsHost: HOST,
    wsPort: server.port,
    wssPort: server.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        try {
          if (opts.channelAuth) {
            const override = opts.channelAuth(socketId, channelName, signer);
            if (override) { callback(null, override); return; }
          }
          let presenceData;
          if (channelName.startsWith('presence-')) {
            if (!user) throw new Error(`client ${opts.label || ''} has no user for ${channelName}`);
            presenceData = { user_id: user.id, user_info: user.info || {} };
          }
          callback(null, signer.authorizeChannel(socketId, channelName, presenceData));
        } catch (e) {
          callback(e, null);
        }
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, callback) => {
        try {
          if (opts.userAuth) { callback(null, opts.userAuth(socketId, signer)); return; }
          if (!user) throw new Error('client has no user to sign in');
          const userData = { id: user.id };
          if (user.info) userData.user_info = user.info;
          if (user.watchlist) userData.watchlist = user.watchlist;
          callback(null, signer.authenticateUser(socketId, userData));
        } catch (e) {
          callback(e, null);
        }
      },
    },
  });

  return instrument(client, opts.label || defaultLabel(opts), { user, app });
}

/**
 * Records the frames of a pusher-js client (last 200, both directions, and its state
 * changes) for the diagnostics of a timed-out wait; sets client.__interop.
 */
function instrument(client, label, extra = {}) {
  const frames = [];
  const log = (s) => {
    frames.push(s);
    if (frames.length > 200) frames.splice(0, frames.length - 200);
  };
  client.__interop = { label, frames, user: null, app: APPS.main, ...extra };
  client.connection.bind('message', (ev) => log(`<- ${short(ev)}`));
  client.connection.bind('error', (err) => log(`!! error ${short(err)}`));
  client.connection.bind('state_change', (s) => log(`.. state ${s.previous} -> ${s.current}`));
  const origSend = client.send_event.bind(client);
  client.send_event = (event, data, channel) => {
    log(`-> ${short({ event, data, channel })}`);
    return origSend(event, data, channel);
  };
  return client;
}

/** Waits until the client's connection state is `connected`; resolves with its socket_id. */
function connected(client, opts) {
  return waitFor('state connected', (resolve) => {
    const check = () => {
      if (client.connection.state === 'connected') resolve(client.connection.socket_id);
    };
    client.connection.bind('state_change', check);
    check();
    return () => client.connection.unbind('state_change', check);
  }, { clients: [client], ...opts });
}

/** pusher:error frames (as pusher-js surfaces them on the connection's `error` event). */
function recordPusherErrors(client) {
  const rec = record(client.connection, 'error', { client, label: 'connection error' });
  return {
    rec,
    /** Resolves with the `data` ({code, message}) of the first PusherError. */
    first(what = 'pusher:error', opts) {
      return rec.until((items) => {
        const hit = items.find(([e]) => e && e.type === 'PusherError');
        return hit ? hit[0].data || {} : null;
      }, what, opts);
    },
    pusherErrors() {
      return rec.items.map(([e]) => e).filter((e) => e && e.type === 'PusherError');
    },
  };
}

/**
 * Subscribes and waits for pusher:subscription_succeeded. Fails fast with the server's
 * words on pusher:subscription_error or on a pusher:error arriving meanwhile.
 * Resolves with the channel; the success payload is on channel.__successData.
 */
async function subscribed(client, name, opts = {}) {
  await connected(client, opts);
  const channel = client.subscribe(name);
  const data = await waitFor(`subscription_succeeded on ${name}`, (resolve, reject) => {
    if (channel.subscribed && channel.__successData !== undefined) { resolve(channel.__successData); return undefined; }
    const ok = (d) => resolve(d);
    const bad = (d) => reject(new Error(`subscription to ${name} failed: pusher:subscription_error ${short(d)}`));
    const err = (e) => {
      if (e && e.type === 'PusherError') reject(new Error(`pusher:error while subscribing to ${name}: ${short(e.data)}`));
    };
    channel.bind('pusher:subscription_succeeded', ok);
    channel.bind('pusher:subscription_error', bad);
    client.connection.bind('error', err);
    return () => {
      channel.unbind('pusher:subscription_succeeded', ok);
      channel.unbind('pusher:subscription_error', bad);
      client.connection.unbind('error', err);
    };
  }, { clients: [client], ...opts });
  channel.__successData = data;
  return channel;
}

/**
 * pusher.signin() and wait for pusher:signin_success, then for the
 * `#server-to-user-{id}` subscription pusher-js makes right after it to be acknowledged.
 */
async function signedIn(client, opts = {}) {
  const id = client.__interop.user && client.__interop.user.id;
  const success = waitFor(`pusher:signin_success for ${id}`, (resolve, reject) => {
    const onMsg = (ev) => {
      if (ev.event === 'pusher:signin_success') resolve(ev.data);
    };
    const onErr = (e) => {
      if (e && e.type === 'PusherError') reject(new Error(`pusher:error during signin of ${id}: ${short(e.data)}`));
    };
    client.connection.bind('message', onMsg);
    client.connection.bind('error', onErr);
    return () => {
      client.connection.unbind('message', onMsg);
      client.connection.unbind('error', onErr);
    };
  }, { clients: [client], ...opts });
  client.signin();
  const data = await success;
  if (!client.user.user_data || client.user.user_data.id !== id) {
    throw new Error(`pusher-js rejected signin_success ${short(data)} (user_data=${short(client.user.user_data)})`);
  }
  const ch = client.user.serverToUserChannel;
  if (!ch || ch.name !== `#server-to-user-${id}`) {
    throw new Error(`pusher-js did not create #server-to-user-${id} (got ${ch && ch.name})`);
  }
  await waitFor(`subscription_succeeded on #server-to-user-${id}`, (resolve, reject) => {
    if (ch.subscribed) { resolve(); return undefined; }
    const ok = () => resolve();
    const err = (e) => {
      if (e && e.type === 'PusherError') reject(new Error(`pusher:error on #server-to-user-${id} subscribe: ${short(e.data)}`));
    };
    ch.bind('pusher:subscription_succeeded', ok);
    client.connection.bind('error', err);
    return () => {
      ch.unbind('pusher:subscription_succeeded', ok);
      client.connection.unbind('error', err);
    };
  }, { clients: [client], ...opts });
  return data;
}

/** Calls a `pusher` lib method that must fail, and resolves with its RequestError. */
async function expectHttpError(promiseFn, label) {
  let res;
  try {
    res = await withTimeout(Promise.resolve().then(promiseFn), label);
  } catch (e) {
    if (e && e.name === 'PusherRequestError') return e;
    throw e;
  }
  let body = '';
  try { body = await res.text(); } catch (_) { /* ignore */ }
  throw new Error(`${label}: expected an HTTP error, got ${res.status} ${body}`);
}

/** Await a `pusher` lib call (bounded) and parse its JSON body. */
async function json(promise, label = 'HTTP API call') {
  const res = await withTimeout(Promise.resolve(promise), label);
  const text = await withTimeout(res.text(), `${label} body`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${label}: response body is not JSON: ${text}`);
  }
}

/**
 * Install before/after hooks that run one server (or 2-node cluster) for a whole test
 * file, and a beforeEach that restarts the client rotation at the first node.
 */
function useServer(hooks, opts) {
  const ref = {};
  hooks.before(async () => {
    ref.server = await startServer(opts);
  });
  (hooks.beforeEach || nodeTest.beforeEach)(() => {
    if (ref.server) ref.server.resetRotation();
  });
  hooks.after(async () => {
    if (ref.server) await ref.server.stop();
  });
  return ref;
}

module.exports = {
  APPS,
  HOST,
  TIMEOUT,
  CLUSTER,
  ADMIN_TOKEN,
  adminStats,
  instrument,
  PusherJS,
  PusherHTTP,
  startServer,
  useServer,
  httpClient,
  makeClient,
  connected,
  subscribed,
  signedIn,
  record,
  recordPusherErrors,
  waitFor,
  withTimeout,
  expectHttpError,
  json,
  uniq,
  randomMasterKey,
  short,
};

// Additive: lets a test that needs two nodes (drain.test.js) start its own cluster in
// single-node mode too. Same function startServer uses under INTEROP_CLUSTER=1.
module.exports.startCluster = startCluster;
