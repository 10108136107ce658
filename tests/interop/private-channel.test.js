'use strict';
// 3. Private channels: a correct HMAC signature subscribes; a wrong one is refused with
//    pusher:subscription_error / pusher:error while the socket stays connected and its
//    other subscriptions keep receiving events.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

test('private channel with a correct signature: subscription succeeds and events arrive', async () => {
  const client = ctx.server.client();
  const name = h.uniq('private-orders');
  const channel = await h.subscribed(client, name);
  assert.equal(channel.subscribed, true);
  const got = h.record(channel, 'updated', { client });
  await h.json(ctx.server.http().trigger(name, 'updated', { status: 'paid' }), 'trigger');
  const [d] = await got.first();
  assert.deepEqual(d, { status: 'paid' });
});

/** Waits for the refusal in either form pusher-js surfaces it; returns a description. */
async function refusal(client, channel) {
  return h.waitFor(`refusal of ${channel.name}`, (resolve, reject) => {
    const subErr = (d) => resolve({ via: 'pusher:subscription_error', data: d });
    const connErr = (e) => { if (e && e.type === 'PusherError') resolve({ via: 'pusher:error', data: e.data }); };
    const ok = () => reject(new Error(`server accepted ${channel.name} with a bad signature`));
    channel.bind('pusher:subscription_error', subErr);
    channel.bind('pusher:subscription_succeeded', ok);
    client.connection.bind('error', connErr);
    return () => {
      channel.unbind('pusher:subscription_error', subErr);
      channel.unbind('pusher:subscription_succeeded', ok);
      client.connection.unbind('error', connErr);
    };
  }, { clients: [client] });
}

async function assertRefusedButAlive(badAuth) {
  const client = ctx.server.client({
    channelAuth: (socketId, channelName, signer) => (channelName.includes('-bad-') ? badAuth(socketId, channelName, signer) : null),
  });
  const publicName = h.uniq('public-alongside');
  const goodPrivate = h.uniq('private-good');
  const pub = await h.subscribed(client, publicName);
  const good = await h.subscribed(client, goodPrivate);
  const socketBefore = client.connection.socket_id;
  const states = h.record(client.connection, 'state_change', { client });

  const badName = h.uniq('private-bad-sig');
  const bad = client.subscribe(badName);
  const badEvents = h.record(bad, 'secret', { client });
  const how = await refusal(client, bad);
  assert.ok(how.data !== undefined, 'refusal carries data');
  assert.equal(bad.subscribed, false, 'channel must not be marked subscribed');

  // the socket stays up and other subscriptions still work
  const api = ctx.server.http();
  const pubGot = h.record(pub, 'still-here', { client });
  const goodGot = h.record(good, 'still-here', { client });
  await h.json(api.trigger(badName, 'secret', { leaked: true }), 'trigger to refused channel');
  await h.json(api.trigger([publicName, goodPrivate], 'still-here', { ok: 1 }), 'trigger to live channels');
  assert.deepEqual((await pubGot.first())[0], { ok: 1 });
  assert.deepEqual((await goodGot.first())[0], { ok: 1 });
  assert.equal(client.connection.state, 'connected');
  assert.equal(client.connection.socket_id, socketBefore, 'same socket (no reconnect)');
  assert.deepEqual(states.items, [], 'no state change after the refusal');
  assert.equal(badEvents.items.length, 0, 'events on the refused channel are not delivered');
  return how;
}

test('private channel with a WRONG signature (other secret): refused, socket stays connected', async () => {
  await assertRefusedButAlive((socketId, channelName) => {
    const wrong = new h.PusherHTTP({ appId: h.APPS.main.id, key: h.APPS.main.key, secret: 'not-the-secret' });
    return wrong.authorizeChannel(socketId, channelName);
  });
});

test('private channel with a signature for another socket_id: refused, socket stays connected', async () => {
  await assertRefusedButAlive((socketId, channelName, signer) => signer.authorizeChannel('1234.5678', channelName));
});

test('private channel with a garbage auth string: refused, socket stays connected', async () => {
  await assertRefusedButAlive(() => ({ auth: 'app-key:not-hex-at-all' }));
});

test('private channel with a signature for another channel name: refused', async () => {
  await assertRefusedButAlive((socketId, channelName, signer) => signer.authorizeChannel(socketId, 'private-something-else'));
});
