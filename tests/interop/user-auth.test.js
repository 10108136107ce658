'use strict';
// 10. User authentication: pusher.signin(); sendToUser reaches pusher.user.bind();
//     terminateUserConnections closes that user's sockets only.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

test('signin: signin_success with the signed user_data, #server-to-user-{id} acknowledged', async () => {
  const id = h.uniq('user');
  const c = ctx.server.client({ user: { id, info: { name: 'Signed' } } });
  await h.connected(c);
  const data = await h.signedIn(c);
  assert.equal(typeof data.user_data, 'string', 'signin_success data.user_data is a JSON string');
  assert.deepEqual(JSON.parse(data.user_data), { id, user_info: { name: 'Signed' } });
  assert.equal(c.user.user_data.id, id);
  assert.equal(c.connection.state, 'connected');
});

test('sendToUser reaches every socket of that user via pusher.user.bind, and nobody else', async () => {
  const id = h.uniq('user');
  const other = h.uniq('user');
  const u1 = ctx.server.client({ user: { id }, label: 'u#1' });
  const u2 = ctx.server.client({ user: { id }, label: 'u#2' });
  const o = ctx.server.client({ user: { id: other }, label: 'other' });
  for (const c of [u1, u2, o]) {
    await h.connected(c);
    await h.signedIn(c);
  }
  const r1 = h.record(u1.user, 'notify', { client: u1 });
  const r2 = h.record(u2.user, 'notify', { client: u2 });
  const ro = h.record(o.user, 'notify', { client: o });
  const data = { text: 'for you', n: [1, 2] };
  const api = ctx.server.http();
  await h.json(api.sendToUser(id, 'notify', data), 'sendToUser');
  assert.deepEqual((await r1.first())[0], data);
  assert.deepEqual((await r2.first())[0], data);
  // marker to the other user proves nothing for it was queued before
  const mo = h.record(o.user, 'marker', { client: o });
  await h.json(api.sendToUser(other, 'marker', {}), 'sendToUser marker');
  await mo.first();
  assert.equal(ro.items.length, 0);
  assert.equal(r1.items.length, 1, 'exactly once per socket');
});

test('terminateUserConnections closes that user\'s sockets; another user stays connected', async () => {
  const victim = h.uniq('victim');
  const bystander = h.uniq('bystander');
  const v1 = ctx.server.client({ user: { id: victim }, label: 'victim#1' });
  const v2 = ctx.server.client({ user: { id: victim }, label: 'victim#2' });
  const b = ctx.server.client({ user: { id: bystander }, label: 'bystander' });
  for (const c of [v1, v2, b]) {
    await h.connected(c);
    await h.signedIn(c);
  }
  const bSocket = b.connection.socket_id;
  const sv1 = h.record(v1.connection, 'state_change', { client: v1 });
  const sv2 = h.record(v2.connection, 'state_change', { client: v2 });
  const sb = h.record(b.connection, 'state_change', { client: b });

  await h.json(ctx.server.http().terminateUserConnections(victim), 'terminateUserConnections');
  const leftConnected = (s) => s.previous === 'connected' && s.current !== 'connected';
  await sv1.first(leftConnected, 'victim#1 leaves connected');
  await sv2.first(leftConnected, 'victim#2 leaves connected');

  // the bystander still works on the same socket
  const got = h.record(b.user, 'ping-user', { client: b });
  await h.json(ctx.server.http().sendToUser(bystander, 'ping-user', { ok: true }), 'sendToUser bystander');
  assert.deepEqual((await got.first())[0], { ok: true });
  assert.equal(b.connection.state, 'connected');
  assert.equal(b.connection.socket_id, bSocket);
  assert.deepEqual(sb.items, [], 'bystander had no state change');
});

test('terminateUserConnections leaves presence-only (not signed in) sockets alone', async () => {
  const id = h.uniq('presence-only');
  const room = h.uniq('presence-term');
  const c = ctx.server.client({ user: { id } });
  const ch = await h.subscribed(c, room);
  const states = h.record(c.connection, 'state_change', { client: c });
  await h.json(ctx.server.http().terminateUserConnections(id), 'terminateUserConnections');
  const m = h.record(ch, 'marker', { client: c });
  await h.json(ctx.server.http().trigger(room, 'marker', {}), 'marker');
  await m.first();
  assert.deepEqual(states.items, []);
  assert.equal(c.connection.state, 'connected');
});

test('signin with a wrong signature: pusher:error, not signed in, socket stays connected', async () => {
  const id = h.uniq('forger');
  const wrong = new h.PusherHTTP({ appId: h.APPS.main.id, key: h.APPS.main.key, secret: 'wrong-secret' });
  const c = ctx.server.client({ user: { id }, userAuth: (socketId) => wrong.authenticateUser(socketId, { id }) });
  await h.connected(c);
  const socketId = c.connection.socket_id;
  const errs = h.recordPusherErrors(c);
  const msgs = h.record(c.connection, 'message', { client: c });
  c.signin();
  await errs.first('pusher:error for the bad signin');
  assert.ok(!msgs.data().some((ev) => ev.event === 'pusher:signin_success'), 'no signin_success');
  assert.equal(c.user.user_data, null);
  assert.equal(c.connection.state, 'connected');
  assert.equal(c.connection.socket_id, socketId);
});

test('a socket that is not that user cannot subscribe to #server-to-user-{id}', async () => {
  const victim = h.uniq('victim');
  const v = ctx.server.client({ user: { id: victim }, label: 'victim' });
  await h.connected(v);
  await h.signedIn(v);
  const attacker = ctx.server.client({ label: 'attacker' });
  const pub = h.uniq('attacker-public');
  const chA = await h.subscribed(attacker, pub);
  const raw = h.record(attacker.connection, 'message', { client: attacker });
  // pusher-js refuses '#' channel names, so send the frame by hand
  attacker.send_event('pusher:subscribe', { channel: `#server-to-user-${victim}` });
  attacker.send_event('pusher:ping', {});
  await raw.first((ev) => ev.event === 'pusher:pong', 'pong after the forged subscribe');
  const vGot = h.record(v.user, 'secret', { client: v });
  await h.json(ctx.server.http().sendToUser(victim, 'secret', { s: 1 }), 'sendToUser');
  await vGot.first();
  const m = h.record(chA, 'marker', { client: attacker });
  await h.json(ctx.server.http().trigger(pub, 'marker', {}), 'marker');
  await m.first();
  const leaked = raw.data().filter((ev) => ev.channel === `#server-to-user-${victim}`
    && !String(ev.event).startsWith('pusher:'));
  assert.deepEqual(leaked, [], 'no server-to-user frame for another user');
  assert.ok(!raw.data().some((ev) => ev.event === 'pusher_internal:subscription_succeeded'
    && ev.channel === `#server-to-user-${victim}`), 'subscription was not acknowledged');
});
