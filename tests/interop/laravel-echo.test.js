'use strict';
// 16. Laravel Echo (npm `laravel-echo`, unmodified) over pusher-js, configured the way a
//     Laravel app configures it for Reverb (broadcaster 'reverb') or Pusher ('pusher'),
//     with an `authorizer` that answers exactly like Laravel's POST /broadcasting/auth.
//     Public `.listen()` (with and without Echo's App.Events namespace), private channels,
//     notifications, encrypted private channels, presence `here`/`joining`/`leaving`,
//     whispers, `toOthers()` (X-Socket-ID), `leave()`.
//     INTEROP_CLUSTER=1: the Echo clients alternate over the 2 nodes like every client.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

let Echo;
before(async () => {
  // laravel-echo 2.x is an ES module package: import() it from this CommonJS file
  ({ default: Echo } = await import('laravel-echo'));
});

const APP = h.APPS.main;

// ---------------------------------------------------------------------------
// the Laravel side

/**
 * routes/channels.php of the Laravel app under test: Broadcast::channel(pattern, callback).
 * A callback returns false (403), true (private channel allowed) or, for a presence channel,
 * the array that becomes the member's user_info.
 */
const CHANNEL_ROUTES = [
  ['orders.{id}', () => true],
  ['App.Models.User.{id}', (user, id) => Number(user.id) === Number(id)],
  ['vault.{id}', () => true],
  ['chat.{room}', (user) => ({ id: user.id, name: user.name })],
  ['typing.{room}', () => true],
];

/**
 * What Laravel answers on POST /broadcasting/auth {socket_id, channel_name}
 * (Illuminate\Broadcasting\Broadcasters\PusherBroadcaster, which ReverbBroadcaster extends,
 * signing with pusher/pusher-php-server): the channel name without its private- /
 * private-encrypted- / presence- prefix is matched against routes/channels.php; no match or
 * a falsy callback is a 403; otherwise {auth} for private channels ({auth, shared_secret}
 * for private-encrypted ones, the server holding the master key) and {auth, channel_data}
 * with channel_data = {"user_id": "<id>", "user_info": <callback result>} for presence
 * (pusher-php-server 7 declares `string $user_id`, so the id arrives as a string).
 * Signed here with the `pusher` npm lib, which computes the same HMAC-SHA256.
 */
function laravelBroadcastingAuth(user, { encryptionMasterKeyBase64, numericUserId = false } = {}) {
  const pusher = new h.PusherHTTP({
    appId: APP.id, key: APP.key, secret: APP.secret, encryptionMasterKeyBase64,
  });
  return ({ socket_id: socketId, channel_name: channelName }) => {
    const normal = channelName.replace(/^(private-encrypted-|private-|presence-)/, '');
    for (const [pattern, callback] of CHANNEL_ROUTES) {
      const re = new RegExp(`^${pattern.replace(/\./g, '\\.').replace(/\{\w+\}/g, '([^.]+)')}$`);
      const m = re.exec(normal);
      if (!m) continue;
      const result = callback(user, ...m.slice(1));
      if (!result) break;
      if (channelName.startsWith('presence-')) {
        // numericUserId: pusher-php-server before 7 had no type on $user_id, so apps with
        // integer keys sent "user_id": 5 (Laravel 6/7/8 era); Reverb and Pusher accept it
        const userId = numericUserId ? user.id : String(user.id);
        return pusher.authorizeChannel(socketId, channelName, { user_id: userId, user_info: result });
      }
      return pusher.authorizeChannel(socketId, channelName);
    }
    const err = new Error('403 Forbidden');
    err.status = 403;
    throw err;
  };
}

/**
 * `new Echo({...})` as resources/js/echo.js of a Laravel app has it, with the documented
 * custom `authorizer` (the axios.post('/broadcasting/auth') of the Laravel docs, answered
 * in-process by laravelBroadcastingAuth). wsPort: the next node of the rotation.
 */
function echoFor(user, { broadcaster = 'reverb', label, encryptionMasterKeyBase64, numericUserId } = {}) {
  const node = ctx.server.pick();
  const endpoint = laravelBroadcastingAuth(user, { encryptionMasterKeyBase64, numericUserId });
  const options = {
    broadcaster,
    key: APP.key,
    wsHost: h.HOST,
    wsPort: node.port,
    wssPort: node.port,
    forceTLS: false,
    enabledTransports: ['ws', 'wss'],
    Pusher: h.PusherJS,
    // the Laravel docs' authorizer: axios.post('/broadcasting/auth', {socket_id,
    // channel_name}).then((r) => callback(null, r.data)).catch((e) => callback(e))
    authorizer: (channel) => ({
      authorize: (socketId, callback) => {
        let response;
        try {
          response = endpoint({ socket_id: socketId, channel_name: channel.name });
        } catch (e) {
          callback(e);
          return;
        }
        callback(null, response);
      },
    }),
  };
  if (broadcaster === 'pusher') options.cluster = 'mt1'; // VITE_PUSHER_APP_CLUSTER
  const echo = new Echo(options);
  const pusher = echo.connector.pusher;
  const name = `${label || `echo:${user ? user.id : 'guest'}`}${ctx.server.nodes.length > 1 ? `@${node.name}` : ''}`;
  h.instrument(pusher, name, { user });
  ctx.server.track(pusher);
  return echo;
}

// ---------------------------------------------------------------------------
// bounded waits on Echo callbacks

/** A callback to hand to Echo that records its calls; `until`/`count` wait (bounded). */
class Calls {
  constructor(label, echo) {
    this.label = label;
    this.pusher = echo.connector.pusher;
    this.items = [];
    this.listeners = new Set();
    this.fn = (...args) => {
      this.items.push(args);
      for (const l of [...this.listeners]) l();
    };
  }

  until(check, what) {
    return h.waitFor(`${what} (${this.label})`, (resolve) => {
      const test = () => {
        const v = check(this.items);
        if (v) resolve(v);
      };
      this.listeners.add(test);
      test();
      return () => this.listeners.delete(test);
    }, { clients: [this.pusher] });
  }

  /** Resolves with the argument array of call number n (1-based). */
  nth(n, what = `call #${n}`) {
    return this.until((items) => items[n - 1], what);
  }
}

/** Waits for Echo's `.subscribed()` on `channel`; fails on `.error()` or a pusher:error. */
function echoSubscribed(echo, channel, label) {
  const pusher = echo.connector.pusher;
  return h.waitFor(`Echo .subscribed() on ${label}`, (resolve, reject) => {
    if (channel.subscription.subscribed) { resolve(); return undefined; }
    let active = true;
    channel.subscribed(() => { if (active) resolve(); });
    channel.error((e) => { if (active) reject(new Error(`Echo .error() on ${label}: ${h.short(e)}`)); });
    const onErr = (e) => {
      if (e && e.type === 'PusherError') reject(new Error(`pusher:error while subscribing to ${label}: ${h.short(e.data)}`));
    };
    pusher.connection.bind('error', onErr);
    return () => {
      active = false;
      pusher.connection.unbind('error', onErr);
    };
  }, { clients: [pusher] });
}

/** Everything the server sent before now has been processed: a ping/pong round trip. */
async function roundTrip(echo) {
  const pusher = echo.connector.pusher;
  const pong = h.record(pusher.connection, 'message', { client: pusher });
  pusher.send_event('pusher:ping', {});
  await pong.first((ev) => ev.event === 'pusher:pong', 'pusher:pong');
  pong.stop();
}

/** Triggers `marker` on a public channel `echo` listens to and waits for it. */
async function marker(echo, channelName) {
  const got = new Calls(`marker on ${channelName}`, echo);
  echo.channel(channelName).listen('.marker', got.fn);
  await h.json(ctx.server.http().trigger(channelName, 'marker', {}), 'marker trigger');
  await got.nth(1, 'marker');
  echo.channel(channelName).stopListening('.marker', got.fn);
}

const api = () => ctx.server.http();

// ---------------------------------------------------------------------------
// tests

test('public channel: .listen(".OrderShipped") gets the event the HTTP lib triggers', async () => {
  const echo = echoFor(null, { label: 'guest' });
  const name = h.uniq('orders');
  const ch = echo.channel(name);
  const dotted = new Calls('.OrderShipped', echo);
  ch.listen('.OrderShipped', dotted.fn);
  await echoSubscribed(echo, ch, name);
  const payload = { order: { id: 42, total: '19.99', items: ['book', 'pen'] }, note: 'héllo ☃' };
  await h.json(api().trigger(name, 'OrderShipped', payload), 'trigger OrderShipped');
  const [data] = await dotted.nth(1, 'OrderShipped');
  assert.deepEqual(data, payload);
});

test('public channel: Echo\'s App.Events namespace: .listen("OrderShipped") gets "App\\\\Events\\\\OrderShipped" only', async () => {
  const echo = echoFor(null, { label: 'guest' });
  const name = h.uniq('orders-ns');
  const ch = echo.channel(name);
  const namespaced = new Calls('OrderShipped (namespaced)', echo);
  const dotted = new Calls('.OrderShipped', echo);
  ch.listen('OrderShipped', namespaced.fn);
  ch.listen('.OrderShipped', dotted.fn);
  await echoSubscribed(echo, ch, name);
  // broadcast(new App\Events\OrderShipped($order)) without broadcastAs(): the class name
  await h.json(api().trigger(name, 'App\\Events\\OrderShipped', { order: { id: 1 } }), 'trigger FQCN');
  const [data] = await namespaced.nth(1, 'App\\Events\\OrderShipped');
  assert.deepEqual(data, { order: { id: 1 } });
  await h.json(api().trigger(name, 'OrderShipped', { order: { id: 2 } }), 'trigger short name');
  assert.deepEqual((await dotted.nth(1, 'OrderShipped'))[0], { order: { id: 2 } });
  await marker(echo, name);
  assert.equal(namespaced.items.length, 1, 'namespaced listener: the FQCN event only');
  assert.equal(dotted.items.length, 1, 'dotted listener: the short name only');
});

test('private channel: Echo.private() authorizes through /broadcasting/auth and receives events', async () => {
  const echo = echoFor({ id: 7, name: 'Seven' });
  const ch = echo.private('orders.9001');
  const got = new Calls('.OrderShipped', echo);
  ch.listen('.OrderShipped', got.fn);
  await echoSubscribed(echo, ch, 'private-orders.9001');
  assert.equal(ch.name, 'private-orders.9001');
  await h.json(api().trigger('private-orders.9001', 'OrderShipped', { id: 9001 }), 'trigger');
  assert.deepEqual((await got.nth(1))[0], { id: 9001 });
});

test('private channel: a notification on App.Models.User.{id} reaches .notification()', async () => {
  const id = 7000 + Math.floor(Math.random() * 1000);
  const echo = echoFor({ id, name: 'Notified' });
  const ch = echo.private(`App.Models.User.${id}`);
  const got = new Calls('.notification()', echo);
  ch.notification(got.fn);
  await echoSubscribed(echo, ch, `private-App.Models.User.${id}`);
  // what Illuminate\Notifications\Channels\BroadcastChannel sends
  const payload = { id: 'b3c1f3d2-8a8e-4c43-9a0e-5f2b2b9c1f00', type: 'App\\Notifications\\InvoicePaid', amount: 12 };
  await h.json(api().trigger(`private-App.Models.User.${id}`,
    'Illuminate\\Notifications\\Events\\BroadcastNotificationCreated', payload), 'trigger notification');
  assert.deepEqual((await got.nth(1))[0], payload);
});

test('private channel: a channel the app\'s routes deny (403) fails in .error(), the socket stays up', async () => {
  const echo = echoFor({ id: 1, name: 'One' });
  const denied = echo.private('App.Models.User.2');
  const err = new Calls('.error()', echo);
  denied.error(err.fn);
  const [e] = await err.nth(1, 'error for a denied channel');
  assert.equal(e.type, 'AuthError', h.short(e));
  assert.match(String(e.error), /403/);
  const ok = echo.private('orders.5');
  await echoSubscribed(echo, ok, 'private-orders.5');
  assert.equal(echo.connectionStatus(), 'connected');
});

test('private-encrypted channel: Echo.encryptedPrivate() decrypts what the HTTP lib encrypted', async () => {
  const masterKey = h.randomMasterKey();
  const echo = echoFor({ id: 3, name: 'Three' }, { encryptionMasterKeyBase64: masterKey });
  const ch = echo.encryptedPrivate('vault.3');
  const got = new Calls('.Sealed', echo);
  ch.listen('.Sealed', got.fn);
  await echoSubscribed(echo, ch, 'private-encrypted-vault.3');
  const enc = ctx.server.http(APP, { encryptionMasterKeyBase64: masterKey });
  await h.json(enc.trigger('private-encrypted-vault.3', 'Sealed', { secret: 's3cr3t' }), 'encrypted trigger');
  assert.deepEqual((await got.nth(1))[0], { secret: 's3cr3t' });
});

test('presence: here / joining / leaving through Echo.join(); a 2nd tab of a user counts once', async () => {
  const room = h.uniq('room');
  const channel = `presence-chat.${room}`;
  const alice = echoFor({ id: 1, name: 'Alice' }, { label: 'alice' });
  const bob = echoFor({ id: 2, name: 'Bob' }, { label: 'bob' });
  const bobTab2 = echoFor({ id: 2, name: 'Bob' }, { label: 'bob#tab2' });

  const hereA = new Calls('alice here', alice);
  const joinA = new Calls('alice joining', alice);
  const leaveA = new Calls('alice leaving', alice);
  const chA = alice.join(`chat.${room}`).here(hereA.fn).joining(joinA.fn).leaving(leaveA.fn);
  const [usersA] = await hereA.nth(1, 'here() for alice');
  assert.deepEqual(usersA, [{ id: 1, name: 'Alice' }]);

  const hereB = new Calls('bob here', bob);
  const chB = bob.join(`chat.${room}`).here(hereB.fn);
  const [usersB] = await hereB.nth(1, 'here() for bob');
  assert.deepEqual([...usersB].sort((x, y) => x.id - y.id), [{ id: 1, name: 'Alice' }, { id: 2, name: 'Bob' }]);
  const [joined] = await joinA.nth(1, 'joining(bob) at alice');
  assert.deepEqual(joined, { id: 2, name: 'Bob' });

  // bob opens a second tab: same user, so no second joining() at alice
  const hereB2 = new Calls('bob tab2 here', bobTab2);
  bobTab2.join(`chat.${room}`).here(hereB2.fn);
  const [usersB2] = await hereB2.nth(1, 'here() for bob tab 2');
  assert.equal(usersB2.length, 2, h.short(usersB2));
  await marker(alice, channel);
  assert.equal(joinA.items.length, 1, 'one joining() per user, not per socket');

  // the first tab leaves: bob is still there
  bob.leave(`chat.${room}`);
  await roundTrip(bob);
  await marker(alice, channel);
  assert.equal(leaveA.items.length, 0, 'no leaving() while bob has another tab');

  // the last tab closes: leaving() once
  bobTab2.disconnect();
  const [left] = await leaveA.nth(1, 'leaving(bob) at alice');
  assert.deepEqual(left, { id: 2, name: 'Bob' });
  await marker(alice, channel);
  assert.equal(leaveA.items.length, 1, 'leaving() exactly once');
  assert.equal(chA.subscription.members.count, 1);
  assert.ok(chB);
});

test('whispers on a private channel: .whisper() reaches .listenForWhisper() of the others, not the sender', async () => {
  const name = h.uniq('typing');
  const alice = echoFor({ id: 11, name: 'Alice' }, { label: 'alice' });
  const bob = echoFor({ id: 12, name: 'Bob' }, { label: 'bob' });
  const carol = echoFor({ id: 13, name: 'Carol' }, { label: 'carol' });
  const heard = {};
  const chans = {};
  for (const [who, echo] of Object.entries({ alice, bob, carol })) {
    heard[who] = new Calls(`${who} listenForWhisper`, echo);
    chans[who] = echo.private(`typing.${name}`).listenForWhisper('typing', heard[who].fn);
    await echoSubscribed(echo, chans[who], `private-typing.${name}`);
  }
  chans.alice.whisper('typing', { name: 'Alice', typing: true });
  assert.deepEqual((await heard.bob.nth(1, 'bob hears alice'))[0], { name: 'Alice', typing: true });
  assert.deepEqual((await heard.carol.nth(1, 'carol hears alice'))[0], { name: 'Alice', typing: true });
  // bob answers after hearing alice: alice gets it, and any echo of her own whisper would
  // have reached her before it
  chans.bob.whisper('typing', { name: 'Bob', typing: false });
  const [reply] = await heard.alice.nth(1, 'alice hears bob');
  assert.deepEqual(reply, { name: 'Bob', typing: false });
  assert.equal(heard.alice.items.length, 1, 'the sender does not hear its own whisper');
  await heard.carol.nth(2, 'carol hears bob');
  await roundTrip(bob);
  assert.equal(heard.bob.items.length, 1, 'bob does not hear his own whisper');
});

test('whispers on a presence channel carry the sender\'s user_id', async () => {
  const room = h.uniq('room');
  const alice = echoFor({ id: 21, name: 'Alice' }, { label: 'alice' });
  const bob = echoFor({ id: 22, name: 'Bob' }, { label: 'bob' });
  const hereA = new Calls('alice here', alice);
  const joinA = new Calls('alice joining', alice);
  const heardA = new Calls('alice listenForWhisper', alice);
  const chA = alice.join(`chat.${room}`).here(hereA.fn).joining(joinA.fn).listenForWhisper('typing', heardA.fn);
  await hereA.nth(1);
  const hereB = new Calls('bob here', bob);
  const heardB = new Calls('bob listenForWhisper', bob);
  const chB = bob.join(`chat.${room}`).here(hereB.fn).listenForWhisper('typing', heardB.fn);
  await hereB.nth(1);
  await joinA.nth(1, 'alice sees bob join');
  chB.whisper('typing', { typing: true });
  const [data, metadata] = await heardA.nth(1, 'alice hears bob');
  assert.deepEqual(data, { typing: true });
  assert.equal(metadata && metadata.user_id, '22');
  chA.whisper('typing', { typing: false });
  const [data2, meta2] = await heardB.nth(1, 'bob hears alice');
  assert.deepEqual(data2, { typing: false });
  assert.equal(meta2 && meta2.user_id, '21');
  assert.equal(heardA.items.length, 1, 'no echo of alice\'s own whisper');
});

test('toOthers(): a broadcast with the X-Socket-ID of one Echo skips that socket only', async () => {
  const name = h.uniq('orders-others');
  const sender = echoFor({ id: 31, name: 'Sender' }, { label: 'sender' });
  const other = echoFor({ id: 32, name: 'Other' }, { label: 'other' });
  const got = {};
  for (const [who, echo] of Object.entries({ sender, other })) {
    got[who] = new Calls(`${who} .OrderUpdated`, echo);
    const ch = echo.private(`orders.${name}`).listen('.OrderUpdated', got[who].fn);
    await echoSubscribed(echo, ch, `private-orders.${name}`);
  }
  // Echo's axios interceptor puts echo.socketId() in X-Socket-ID; Laravel's
  // broadcast(...)->toOthers() turns it into the trigger's socket_id
  const socketId = sender.socketId();
  assert.match(socketId, /^\d+\.\d+$/);
  await h.json(api().trigger(`private-orders.${name}`, 'OrderUpdated', { v: 1 }, { socket_id: socketId }), 'toOthers trigger');
  assert.deepEqual((await got.other.nth(1, 'other gets it'))[0], { v: 1 });
  await h.json(api().trigger(`private-orders.${name}`, 'OrderUpdated', { v: 2 }), 'trigger to everyone');
  const [d] = await got.sender.nth(1, 'sender gets the 2nd event');
  assert.deepEqual(d, { v: 2 }, 'the sender skipped the toOthers() event');
});

test('Echo.leave(): no more events on the channel left, others keep flowing', async () => {
  const echo = echoFor({ id: 41, name: 'Leaver' });
  const gone = h.uniq('orders-gone');
  const kept = h.uniq('orders-kept');
  const goneGot = new Calls('gone .Ping', echo);
  const chGone = echo.private(`orders.${gone}`).listen('.Ping', goneGot.fn);
  await echoSubscribed(echo, chGone, `private-orders.${gone}`);
  const chKept = echo.channel(kept);
  await echoSubscribed(echo, chKept, kept);
  echo.leave(`orders.${gone}`);
  await roundTrip(echo); // pusher:unsubscribe has no ack
  await h.json(api().trigger(`private-orders.${gone}`, 'Ping', {}), 'trigger to the left channel');
  await marker(echo, kept);
  assert.equal(goneGot.items.length, 0);
  const frames = echo.connector.pusher.__interop.frames.filter((f) => f.startsWith('<-') && f.includes(`private-orders.${gone}`) && f.includes('"Ping"'));
  assert.deepEqual(frames, [], 'no frame for the left channel reached the socket');
});

test('broadcaster "pusher" (BROADCAST_CONNECTION=pusher with PUSHER_HOST/PORT) works the same', async () => {
  const a = echoFor({ id: 51, name: 'A' }, { broadcaster: 'pusher', label: 'pusher-a' });
  const b = echoFor({ id: 52, name: 'B' }, { broadcaster: 'pusher', label: 'pusher-b' });
  const room = h.uniq('room');
  const hereA = new Calls('a here', a);
  const joinA = new Calls('a joining', a);
  const evA = new Calls('a .Message', a);
  a.join(`chat.${room}`).here(hereA.fn).joining(joinA.fn).listen('.Message', evA.fn);
  await hereA.nth(1);
  const hereB = new Calls('b here', b);
  b.join(`chat.${room}`).here(hereB.fn);
  assert.equal((await hereB.nth(1))[0].length, 2);
  assert.deepEqual((await joinA.nth(1))[0], { id: 52, name: 'B' });
  await h.json(api().trigger(`presence-chat.${room}`, 'Message', { body: 'hi' }), 'trigger');
  assert.deepEqual((await evA.nth(1))[0], { body: 'hi' });
});

test('presence with a numeric user_id (older pusher-php-server): here / joining / leaving', async () => {
  const room = h.uniq('room');
  const alice = echoFor({ id: 61, name: 'Alice' }, { label: 'alice', numericUserId: true });
  const bob = echoFor({ id: 62, name: 'Bob' }, { label: 'bob', numericUserId: true });
  const bob2 = echoFor({ id: 62, name: 'Bob' }, { label: 'bob#2', numericUserId: true });
  const hereA = new Calls('alice here', alice);
  const joinA = new Calls('alice joining', alice);
  const leaveA = new Calls('alice leaving', alice);
  alice.join(`chat.${room}`).here(hereA.fn).joining(joinA.fn).leaving(leaveA.fn);
  assert.deepEqual((await hereA.nth(1))[0], [{ id: 61, name: 'Alice' }]);
  const hereB = new Calls('bob here', bob);
  bob.join(`chat.${room}`).here(hereB.fn);
  assert.equal((await hereB.nth(1))[0].length, 2);
  assert.deepEqual((await joinA.nth(1))[0], { id: 62, name: 'Bob' });
  const hereB2 = new Calls('bob#2 here', bob2);
  bob2.join(`chat.${room}`).here(hereB2.fn);
  assert.equal((await hereB2.nth(1))[0].length, 2, 'the same numeric id on a 2nd socket is one member');
  bob.leave(`chat.${room}`);
  await roundTrip(bob); // the server has processed the unsubscribe
  await marker(alice, `presence-chat.${room}`);
  assert.equal(leaveA.items.length, 0, 'bob still has a socket');
  bob2.disconnect();
  assert.deepEqual((await leaveA.nth(1))[0], { id: 62, name: 'Bob' });
  assert.equal(joinA.items.length, 1);
});
