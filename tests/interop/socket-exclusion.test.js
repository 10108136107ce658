'use strict';
// 9. socket_id exclusion: a trigger with socket_id skips that connection only.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

async function exclusionCase(name, mkClient) {
  const a = mkClient('a');
  const b = mkClient('b');
  const chA = await h.subscribed(a, name);
  const chB = await h.subscribed(b, name);
  const seenA = h.record(chA, 'update', { client: a });
  const seenB = h.record(chB, 'update', { client: b });
  const markA = h.record(chA, 'marker', { client: a });
  const api = ctx.server.http();
  await h.json(api.trigger(name, 'update', { v: 1 }, { socket_id: a.connection.socket_id }), 'trigger excluding a');
  await h.json(api.trigger(name, 'marker', { v: 2 }), 'marker trigger');
  assert.deepEqual((await seenB.first())[0], { v: 1 }, 'b (not excluded) gets the event');
  await markA.first(() => true, 'marker at a');
  assert.equal(seenA.items.length, 0, 'the excluded socket saw only the marker');
}

test('trigger with socket_id excludes that client on a public channel', async () => {
  await exclusionCase(h.uniq('excl-public'), (label) => ctx.server.client({ label }));
});

test('trigger with socket_id excludes that client on a presence channel (same user elsewhere still gets it)', async () => {
  await exclusionCase(h.uniq('presence-excl'), (label) => ctx.server.client({ label, user: { id: 'same-user' } }));
});

test('triggerBatch with socket_id excludes that client', async () => {
  const name = h.uniq('excl-batch');
  const a = ctx.server.client({ label: 'a' });
  const b = ctx.server.client({ label: 'b' });
  const chA = await h.subscribed(a, name);
  const chB = await h.subscribed(b, name);
  const seenA = h.record(chA, 'update', { client: a });
  const seenB = h.record(chB, 'update', { client: b });
  const markA = h.record(chA, 'marker', { client: a });
  await h.json(ctx.server.http().triggerBatch([
    { channel: name, name: 'update', data: { v: 1 }, socket_id: a.connection.socket_id },
    { channel: name, name: 'marker', data: {} },
  ]), 'batch');
  assert.deepEqual((await seenB.first())[0], { v: 1 });
  await markA.first();
  assert.equal(seenA.items.length, 0);
});
