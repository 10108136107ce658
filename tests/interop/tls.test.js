'use strict';
// 17. TLS (`rtc serve --tls-cert --tls-key`): pusher-js with `forceTLS: true` over wss://
//     subscribes to a private channel (auth signed by the `pusher` lib, as everywhere) and
//     receives an event the `pusher` lib triggers over https (`useTLS: true`); the port
//     speaks TLS only. The certificate comes from a throwaway CA that run.sh makes with
//     openssl and that node trusts through NODE_EXTRA_CA_CERTS (read at node start-up,
//     hence run.sh; never NODE_TLS_REJECT_UNAUTHORIZED=0).
//     Single node only: TLS is per listener and independent of the cluster bus, and the
//     harness's cluster nodes are plain TCP, so the cluster run skips this file (SKIP).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const h = require('./lib/harness');

const CERT = process.env.INTEROP_TLS_CERT;
const KEY = process.env.INTEROP_TLS_KEY;
const SKIP = h.CLUSTER
  ? 'cluster mode: TLS is per listener; this file starts one TLS node in the single-node run'
  : (!CERT || !KEY) && 'INTEROP_TLS_CERT/KEY unset: run through tests/interop/run.sh (it makes the CA and sets NODE_EXTRA_CA_CERTS)';
const APP = h.APPS.main;
const LISTENING = /^rtc listening on https:\/\/127\.0\.0\.1:(\d+)/;

/** `rtc serve` with lib/server.toml and --tls-cert/--tls-key; resolves once it listens. */
function startTlsServer() {
  const bin = process.env.RTC_BIN || path.resolve(__dirname, '..', '..', 'target', 'debug', 'rtc');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtc-interop-tls-'));
  const cfg = path.join(dir, 'rtc.toml');
  fs.copyFileSync(path.join(__dirname, 'lib', 'server.toml'), cfg);
  const proc = spawn(bin, ['serve', '--config', cfg, '--host', h.HOST, '--port', '0', '--tls-cert', CERT, '--tls-key', KEY], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-20000); });
  const server = {
    proc,
    port: 0,
    clients: new Set(),
    stderrTail: (n = 3000) => stderr.slice(-n),
    async stop() {
      for (const c of server.clients) {
        try { c.disconnect(); } catch (_) { /* ignore */ }
      }
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGKILL');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000).unref())]);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  process.on('exit', () => { try { proc.kill('SIGKILL'); } catch (_) { /* ignore */ } });
  const rl = readline.createInterface({ input: proc.stdout });
  return h.waitFor('rtc (TLS) to print its https:// banner', (resolve, reject) => {
    rl.on('line', (line) => {
      stdout += `${line}\n`;
      const m = LISTENING.exec(line);
      if (m) {
        server.port = Number(m[1]);
        resolve(server);
      }
    });
    proc.on('exit', (code) => reject(new Error(`rtc exited (code ${code}) before listening\n${stdout}${stderr}`)));
  }, { timeout: 10000 });
}

let server = null;
before(async () => {
  if (!SKIP) server = await startTlsServer();
});
after(async () => {
  if (server) await server.stop();
});

/** pusher-js as a site served over https configures it (Echo's forceTLS: true). */
function tlsClient(label) {
  const signer = new h.PusherHTTP({ appId: APP.id, key: APP.key, secret: APP.secret });
  const client = new h.PusherJS(APP.key, {
    cluster: 'mt1',
    wsHost: h.HOST,
    wsPort: server.port,
    wssPort: server.port,
    forceTLS: true,
    enabledTransports: ['ws', 'wss'],
    disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        try {
          callback(null, signer.authorizeChannel(socketId, channelName));
        } catch (e) {
          callback(e, null);
        }
      },
    },
  });
  server.clients.add(client);
  return h.instrument(client, label);
}

/** GET url (https via node's default CAs + NODE_EXTRA_CA_CERTS); resolves { status, cert, body }. */
function get(mod, url) {
  return h.withTimeout(new Promise((resolve, reject) => {
    const req = mod.get(url, (res) => {
      const cert = res.socket.getPeerCertificate ? res.socket.getPeerCertificate() : null;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, cert, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  }), `GET ${url}`);
}

test('pusher-js with forceTLS: wss:// private channel gets the event the pusher lib triggers over https', { skip: SKIP }, async () => {
  const client = tlsClient('wss-client');
  const socketId = await h.connected(client);
  assert.match(socketId, /^\d+\.\d+$/);
  assert.equal(client.connection.isUsingTLS(), true, 'pusher-js uses wss:// (the port speaks nothing else, see the next test)');
  const name = h.uniq('private-tls');
  const channel = await h.subscribed(client, name);
  const got = h.record(channel, 'shipped', { client });
  const api = new h.PusherHTTP({
    appId: APP.id, key: APP.key, secret: APP.secret, host: h.HOST, port: String(server.port), useTLS: true, timeout: h.TIMEOUT,
  });
  await h.json(api.trigger(name, 'shipped', { order: 7, via: 'https' }), 'trigger over https');
  const [data] = await got.first();
  assert.deepEqual(data, { order: 7, via: 'https' });
  const info = await h.json(api.get({ path: `/channels/${name}`, params: {} }), 'channel info over https');
  assert.equal(info.occupied, true);
});

test('the TLS port speaks TLS only: https presents the test certificate, plain http fails', { skip: SKIP }, async () => {
  const ok = await get(https, `https://${h.HOST}:${server.port}/up`);
  assert.equal(ok.status, 200);
  assert.equal(ok.cert.subject.CN, 'localhost');
  const http = require('node:http');
  await assert.rejects(get(http, `http://${h.HOST}:${server.port}/up`), (e) => !/timed out/.test(e.message),
    'plain http must fail fast, not hang');
  // and the node keeps serving after that
  const again = await get(https, `https://${h.HOST}:${server.port}/up`);
  assert.equal(again.status, 200);
});
