'use strict';
// 6. Client events: client-* on private and presence channels reach the other subscribers,
//    are not echoed to the sender, carry user_id metadata on presence, and are rejected
//    (pusher:error, not delivered) on an app with client_events = "off".
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

/**
 * sender triggers client-typing; receiver must get it; then receiver answers client-ack,
 * which proves the sender's socket has been sent everything that preceded it: an echo of
 * client-typing would have been queued to the sender before the ack.
 */
async function roundTrip(sender, receiver, chS, chR, payload) {
  const recvTyping = h.record(chR, 'client-typing', { client: receiver });
  const sendTyping = h.record(chS, 'client-typing', { client: sender });
  const ack = h.record(chS, 'client-ack', { client: sender });
  assert.equal(chS.trigger('client-typing', payload), true, 'pusher-js sent the event');
  const [data, metadata] = await recvTyping.first(() => true, 'client-typing at the receiver');
  chR.trigger('client-ack', { ok: true });
  const [ackData, ackMeta] = await ack.first(() => true, 'client-ack at the sender');
  assert.deepEqual(ackData, { ok: true });
  assert.equal(sendTyping.items.length, 0, 'client event must not be echoed to its sender');
  return { data, metadata, ackMeta };
}

test('client event on a private channel reaches the other subscriber, not the sender', async () => {
  const name = h.uniq('private-chat');
  const a = ctx.server.client({ label: 'a' });
  const b = ctx.server.client({ label: 'b' });
  const chA = await h.subscribed(a, name);
  const chB = await h.subscribed(b, name);
  const { data, metadata } = await roundTrip(a, b, chA, chB, { typing: true, who: 'a' });
  assert.deepEqual(data, { typing: true, who: 'a' });
  assert.equal(metadata.user_id, undefined, 'no user_id on a private channel');
});

test('client event on a presence channel carries the sender user_id in metadata', async () => {
  const name = h.uniq('presence-chat');
  const a = ctx.server.client({ user: { id: 'user-a', info: { n: 'A' } } });
  const b = ctx.server.client({ user: { id: 'user-b', info: { n: 'B' } } });
  const chA = await h.subscribed(a, name);
  const chB = await h.subscribed(b, name);
  const { data, metadata, ackMeta } = await roundTrip(a, b, chA, chB, { typing: 'yes' });
  assert.deepEqual(data, { typing: 'yes' });
  assert.equal(metadata.user_id, 'user-a');
  assert.equal(ackMeta.user_id, 'user-b');
});

test('client event to several subscribers reaches all of them but the sender', async () => {
  const name = h.uniq('private-room');
  const clients = [0, 1, 2].map((i) => ctx.server.client({ label: `c${i}` }));
  const chans = [];
  for (const c of clients) chans.push(await h.subscribed(c, name));
  const r1 = h.record(chans[1], 'client-hi', { client: clients[1] });
  const r2 = h.record(chans[2], 'client-hi', { client: clients[2] });
  chans[0].trigger('client-hi', { n: 3 });
  assert.deepEqual((await r1.first())[0], { n: 3 });
  assert.deepEqual((await r2.first())[0], { n: 3 });
});

test('client events are rejected on an app with client_events = "off"', async () => {
  const app = h.APPS.noClientEvents;
  const name = h.uniq('private-off');
  const a = ctx.server.client({ app, label: 'a' });
  const b = ctx.server.client({ app, label: 'b' });
  const chA = await h.subscribed(a, name);
  const chB = await h.subscribed(b, name);
  const errs = h.recordPusherErrors(a);
  const leaked = h.record(chB, 'client-typing', { client: b });

  chA.trigger('client-typing', { typing: true });
  const err = await errs.first('pusher:error rejecting the client event');
  assert.equal(typeof err.message, 'string');

  // marker through the HTTP API of app 100002: anything fanned out before it has arrived
  const m = h.record(chB, 'marker', { client: b });
  await h.json(ctx.server.http(app).trigger(name, 'marker', {}), 'marker');
  await m.first();
  assert.equal(leaked.items.length, 0, 'rejected client event must not be delivered');
  assert.equal(a.connection.state, 'connected', 'sender stays connected');
});

test('client event on a channel the sender is not subscribed to is not delivered', async () => {
  const name = h.uniq('private-notmine');
  const a = ctx.server.client({ label: 'a' });
  const b = ctx.server.client({ label: 'b' });
  await h.connected(a);
  const chB = await h.subscribed(b, name);
  const leaked = h.record(chB, 'client-sneak', { client: b });
  a.send_event('client-sneak', { x: 1 }, name);
  // ping round trip on a: the server has processed the client event after the pong
  const pong = h.record(a.connection, 'message', { client: a });
  a.send_event('pusher:ping', {});
  await pong.first((ev) => ev.event === 'pusher:pong', 'pong');
  const m = h.record(chB, 'marker', { client: b });
  await h.json(ctx.server.http().trigger(name, 'marker', {}), 'marker');
  await m.first();
  assert.equal(leaked.items.length, 0);
});
