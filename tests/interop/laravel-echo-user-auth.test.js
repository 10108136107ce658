'use strict';
// 18. Laravel Echo user authentication (`echo.connector.signin()`), the way a Laravel app
//     does it: Echo's `userAuthentication` options (its default endpoint
//     /broadcasting/user-auth, plus the X-CSRF-TOKEN and `Authorization: Bearer` headers
//     Echo adds from `csrfToken` / `bearerToken`) drive pusher-js's own HTTP POST
//     (form-encoded `socket_id`) to a stand-in Laravel app on 127.0.0.1 that answers like
//     Illuminate's BroadcastController@authenticateUser (PusherBroadcaster::
//     resolveAuthenticatedUser: `{auth: "key:" + HMAC-SHA256(secret,
//     "socket_id::user::" + user_data), user_data}`). Then `pusher.sendToUser` (the Node
//     HTTP lib) reaches `echo.connector.pusher.user.bind()` of that user only.
//     user-auth.test.js covers pusher-js's customHandler; this file covers the endpoint
//     path Echo configures. INTEROP_CLUSTER=1: the two Echo clients land on n1 and n2.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });
const APP = h.APPS.main;
const CSRF = 'csrf-token-from-the-blade-meta-tag';

let Echo;
before(async () => {
  ({ default: Echo } = await import('laravel-echo'));
});

// ---------------------------------------------------------------------------
// the Laravel side: POST /broadcasting/user-auth

/** Users the stand-in app knows, by API token (Sanctum-style bearer tokens). */
const USERS = new Map();
/** Every request the endpoint received: { headers, body, status }. */
const requests = [];
let appServer = null;
let appOrigin = '';

/**
 * Broadcast::resolveAuthenticatedUserUsing(fn ($request) => ['id' => (string) $user->id,
 * 'user_info' => ['name' => $user->name]]) behind the CSRF check (419 on a mismatch) and
 * the auth guard (403 for an unknown token), signed as PusherBroadcaster does it by hand.
 */
function userAuth(req, body) {
  if (req.method !== 'POST' || req.url !== '/broadcasting/user-auth') return [404, { message: 'Not Found' }];
  if (req.headers['x-csrf-token'] !== CSRF) return [419, { message: 'CSRF token mismatch.' }];
  const token = (req.headers.authorization || '').replace(/^Bearer /, '');
  const user = USERS.get(token);
  if (!user) return [403, { message: 'Forbidden' }];
  const socketId = new URLSearchParams(body).get('socket_id');
  const userData = JSON.stringify({ id: String(user.id), user_info: { name: user.name } });
  const signature = crypto.createHmac('sha256', APP.secret).update(`${socketId}::user::${userData}`).digest('hex');
  return [200, { auth: `${APP.key}:${signature}`, user_data: userData }];
}

before(async () => {
  appServer = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const [status, json] = userAuth(req, body);
      requests.push({ headers: req.headers, body, status });
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(json));
    });
  });
  await new Promise((resolve, reject) => {
    appServer.once('error', reject);
    appServer.listen(0, h.HOST, resolve);
  });
  appOrigin = `http://${h.HOST}:${appServer.address().port}`;
});

after(async () => {
  if (appServer) await new Promise((r) => appServer.close(r));
});

// ---------------------------------------------------------------------------
// the browser side

/**
 * resources/js/echo.js of a Laravel app, logged in as `user` with an API token. In a
 * browser Echo's default endpoint '/broadcasting/user-auth' is relative to the page;
 * Node has no page, so the same path on the stand-in app's origin is given.
 */
function echoFor(user, label) {
  const token = crypto.randomBytes(12).toString('hex');
  USERS.set(token, user);
  const node = ctx.server.pick();
  const echo = new Echo({
    broadcaster: 'reverb',
    key: APP.key,
    wsHost: h.HOST,
    wsPort: node.port,
    wssPort: node.port,
    forceTLS: false,
    enabledTransports: ['ws', 'wss'],
    Pusher: h.PusherJS,
    csrfToken: CSRF,
    bearerToken: token,
    userAuthentication: { endpoint: `${appOrigin}/broadcasting/user-auth`, headers: {} },
  });
  const pusher = echo.connector.pusher;
  h.instrument(pusher, `${label}${ctx.server.nodes.length > 1 ? `@${node.name}` : ''}`, { user });
  ctx.server.track(pusher);
  return { echo, pusher, token };
}

/**
 * echo.connector.signin(), then waits for pusher:signin_success and for pusher-js's
 * #server-to-user-{id} subscription to be acknowledged. Resolves with signin_success data.
 */
async function echoSignin({ echo, pusher }, id) {
  await h.connected(pusher);
  const success = h.waitFor(`pusher:signin_success for ${id}`, (resolve, reject) => {
    const onMsg = (ev) => {
      if (ev.event === 'pusher:signin_success') resolve(ev.data);
    };
    const onErr = (e) => {
      if (e && e.type === 'PusherError') reject(new Error(`pusher:error during signin of ${id}: ${h.short(e.data)}`));
    };
    pusher.connection.bind('message', onMsg);
    pusher.connection.bind('error', onErr);
    return () => {
      pusher.connection.unbind('message', onMsg);
      pusher.connection.unbind('error', onErr);
    };
  }, { clients: [pusher] });
  echo.connector.signin();
  const data = await success;
  const ch = pusher.user.serverToUserChannel;
  assert.ok(ch, 'pusher-js created the server-to-user channel');
  assert.equal(ch.name, `#server-to-user-${id}`);
  await h.waitFor(`subscription_succeeded on #server-to-user-${id}`, (resolve) => {
    if (ch.subscribed) { resolve(); return undefined; }
    const ok = () => resolve();
    ch.bind('pusher:subscription_succeeded', ok);
    return () => ch.unbind('pusher:subscription_succeeded', ok);
  }, { clients: [pusher] });
  return data;
}

test('Echo signin(): pusher-js POSTs to /broadcasting/user-auth with Echo\'s headers; the server accepts the signature', async () => {
  const id = h.uniq('42');
  const a = echoFor({ id, name: 'Taylor' }, `echo:${id}`);
  const before = requests.length;
  const data = await echoSignin(a, id);
  assert.deepEqual(JSON.parse(data.user_data), { id, user_info: { name: 'Taylor' } });
  assert.equal(a.pusher.user.user_data.id, id);

  const mine = requests.slice(before).filter((r) => r.headers.authorization === `Bearer ${a.token}`);
  assert.equal(mine.length, 1, 'one user-auth request');
  assert.equal(mine[0].status, 200);
  assert.equal(mine[0].headers['x-csrf-token'], CSRF, 'Echo added the CSRF header');
  assert.match(mine[0].headers['content-type'], /^application\/x-www-form-urlencoded/);
  assert.equal(new URLSearchParams(mine[0].body).get('socket_id'), a.pusher.connection.socket_id);
});

test('sendToUser reaches echo.connector.pusher.user.bind() of that user only', async () => {
  const id = h.uniq('7');
  const otherId = h.uniq('8');
  const a = echoFor({ id, name: 'Abigail' }, `echo:${id}`);
  const b = echoFor({ id: otherId, name: 'Bob' }, `echo:${otherId}`);
  await echoSignin(a, id);
  await echoSignin(b, otherId);

  const gotA = h.record(a.pusher.user, 'App\\Events\\InvoicePaid', { client: a.pusher });
  const gotB = h.record(b.pusher.user, 'App\\Events\\InvoicePaid', { client: b.pusher });
  const payload = { invoice: { id: 9, total: '12.50' } };
  await h.json(ctx.server.http().sendToUser(id, 'App\\Events\\InvoicePaid', payload), 'sendToUser');
  assert.deepEqual((await gotA.first())[0], payload);

  // a marker to B after it proves nothing for A's event reached B before it
  const markerB = h.record(b.pusher.user, 'marker', { client: b.pusher });
  await h.json(ctx.server.http().sendToUser(otherId, 'marker', {}), 'sendToUser marker');
  await markerB.first();
  assert.equal(gotB.items.length, 0, 'the other user got nothing');
  assert.equal(gotA.items.length, 1, 'exactly once');
});
