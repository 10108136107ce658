'use strict';
// Interop harness: starts a real `rtc serve`, builds real pusher-js clients and real
// `pusher` (pusher-http-node) API clients against it, and offers bounded waits.
// Only 127.0.0.1 is ever contacted. Every wait has a timeout (default 5 s).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const crypto = require('node:crypto');

const PusherJS = require('pusher-js');
const PusherHTTP = require('pusher');

const HOST = '127.0.0.1';
const TIMEOUT = Number(process.env.INTEROP_TIMEOUT_MS || 5000);
const START_TIMEOUT = Number(process.env.INTEROP_START_TIMEOUT_MS || 10000);
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const CONFIG_TEMPLATE = path.join(__dirname, 'server.toml');

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

/**
 * Starts `rtc serve` on an ephemeral port with lib/server.toml (plus extraToml appended).
 * Returns { port, stop(), stderrTail(), client(opts), http(app, opts) }.
 */
async function startServer({ extraToml = '' } = {}) {
  const bin = rtcBin();
  if (!fs.existsSync(bin)) {
    throw new Error(`rtc binary not found at ${bin}: run \`cargo build\` in the repo root, or set RTC_BIN`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtc-interop-'));
  const cfg = path.join(dir, 'rtc.toml');
  fs.writeFileSync(cfg, fs.readFileSync(CONFIG_TEMPLATE, 'utf8') + (extraToml ? `\n${extraToml}\n` : ''));

  const proc = spawn(bin, ['serve', '--config', cfg, '--host', HOST, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
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
    proc.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); });
  });

  const port = await new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proc.kill('SIGKILL');
      err.message += `\n--- rtc stdout ---\n${stdout}--- rtc stderr (tail) ---\n${stderr.slice(-4000)}`;
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(
      `rtc did not print "rtc listening on http://${HOST}:PORT" within ${START_TIMEOUT} ms`)), START_TIMEOUT);
    rl.on('line', (line) => {
      if (stdout.length < 20000) stdout += `${line}\n`;
      const m = /^rtc listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code, signal) => fail(new Error(`rtc exited before listening (code ${code}, signal ${signal})`)));
    proc.on('error', (e) => fail(e));
  });

  const clients = new Set();
  const server = {
    port,
    configPath: cfg,
    proc,
    stderrTail(n = 3000) { return stderr.slice(-n); },
    exited() { return exited; },
    /** A real pusher-js client connected to this server; see makeClient. */
    client(opts = {}) {
      const c = makeClient(server, opts);
      clients.add(c);
      return c;
    },
    /** A real `pusher` HTTP API client for this server. */
    http(app = APPS.main, opts = {}) {
      return httpClient(server, app, opts);
    },
    async stop() {
      for (const c of clients) {
        try { c.disconnect(); } catch (_) { /* ignore */ }
      }
      clients.clear();
      if (!exited) {
        proc.kill('SIGKILL');
        await Promise.race([exitPromise, new Promise((r) => setTimeout(r, 3000).unref())]);
      }
      rl.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
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

  const frames = [];
  const log = (s) => {
    frames.push(s);
    if (frames.length > 200) frames.splice(0, frames.length - 200);
  };
  client.__interop = { label: opts.label || (user ? `user:${user.id}` : `app:${app.key}`), frames, user, app };
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

/** Install before/after hooks that run one server for a whole test file. */
function useServer(hooks, opts) {
  const ref = {};
  hooks.before(async () => {
    ref.server = await startServer(opts);
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
