'use strict';
// 1. Connection: pusher-js reaches `connected` with a protocol-shaped socket_id;
//    pusher:ping is answered; an unknown app key is refused with 4001.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

test('pusher-js connects: state connected and socket_id matches /^\\d+\\.\\d+$/', async () => {
  const client = ctx.server.client();
  const socketId = await h.connected(client);
  assert.equal(client.connection.state, 'connected');
  assert.match(socketId, /^\d+\.\d+$/);
  assert.equal(client.connection.socket_id, socketId);
  // activity_timeout 120 (lib/server.toml) reached pusher-js: min(its 120 s default, server's)
  assert.equal(client.connection.activityTimeout, 120000);
});

test('two connections get distinct socket_ids', async () => {
  const a = ctx.server.client();
  const b = ctx.server.client();
  const [ida, idb] = await Promise.all([h.connected(a), h.connected(b)]);
  assert.notEqual(ida, idb);
});

test('pusher:ping is answered with pusher:pong', async () => {
  const client = ctx.server.client();
  await h.connected(client);
  const pongs = h.record(client.connection, 'message', { client, label: 'messages' });
  client.send_event('pusher:ping', {});
  await pongs.first((ev) => ev.event === 'pusher:pong', 'pusher:pong');
  assert.equal(client.connection.state, 'connected');
});

test('unknown app key is refused with code 4001 and pusher-js stops (disconnected)', async () => {
  const client = ctx.server.client({ app: { id: '999999', key: 'no-such-key', secret: 'x' }, label: 'bad-key' });
  const errors = h.record(client.connection, 'error', { client, label: 'connection error' });
  const states = h.record(client.connection, 'state_change', { client, label: 'state_change' });
  const codeOf = (e) => (e && ((e.data && e.data.code) || (e.error && e.error.data && e.error.data.code))) || null;
  const [err] = await errors.first((e) => codeOf(e) === 4001, 'an error with code 4001');
  assert.equal(codeOf(err), 4001);
  await states.first((s) => s.current === 'disconnected', 'state disconnected (refused, no retry)');
  assert.ok(!states.data().some((s) => s.current === 'connected'), 'must never reach connected');
});
