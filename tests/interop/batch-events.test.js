'use strict';
// 7. Batch events: triggerBatch delivers each event to its own channel, exactly once.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

test('triggerBatch: every event reaches its channel with its data', async () => {
  const client = ctx.server.client({ user: { id: 'batcher' } });
  const pub = h.uniq('batch-public');
  const priv = h.uniq('private-batch');
  const pres = h.uniq('presence-batch');
  const chans = {};
  for (const n of [pub, priv, pres]) chans[n] = await h.subscribed(client, n);
  const recs = {
    pub: h.record(chans[pub], 'e1', { client }),
    priv: h.record(chans[priv], 'e2', { client }),
    pres: h.record(chans[pres], 'e3', { client }),
    pub2: h.record(chans[pub], 'e4', { client }),
  };
  const body = await h.json(ctx.server.http().triggerBatch([
    { channel: pub, name: 'e1', data: { i: 1 } },
    { channel: priv, name: 'e2', data: { i: 2 } },
    { channel: pres, name: 'e3', data: 'three' },
    { channel: pub, name: 'e4', data: { i: 4, s: 'ünïcode' } },
  ]), 'triggerBatch');
  assert.equal(typeof body, 'object');
  assert.deepEqual((await recs.pub.first())[0], { i: 1 });
  assert.deepEqual((await recs.priv.first())[0], { i: 2 });
  assert.deepEqual((await recs.pres.first())[0], 'three');
  assert.deepEqual((await recs.pub2.first())[0], { i: 4, s: 'ünïcode' });
  // in-order delivery on one channel: e1 was sent before e4 on `pub`
  const order = client.__interop.frames
    .filter((f) => f.startsWith('<-') && f.includes(`"channel":"${pub}"`) && /"event":"e[14]"/.test(f))
    .map((f) => /"event":"(e[14])"/.exec(f)[1]);
  assert.deepEqual(order, ['e1', 'e4']);
});

test('triggerBatch: two events on one channel in one batch arrive once each', async () => {
  const a = ctx.server.client({ label: 'a' });
  const b = ctx.server.client({ label: 'b' });
  const name = h.uniq('batch-twice');
  const chA = await h.subscribed(a, name);
  const chB = await h.subscribed(b, name);
  const ra = h.record(chA, 'tick', { client: a });
  const rb = h.record(chB, 'tick', { client: b });
  await h.json(ctx.server.http().triggerBatch([
    { channel: name, name: 'tick', data: { n: 1 } },
    { channel: name, name: 'tick', data: { n: 2 } },
  ]), 'triggerBatch');
  const ia = await ra.count(2);
  const ib = await rb.count(2);
  assert.deepEqual(ia.map((x) => x[0]), [{ n: 1 }, { n: 2 }]);
  assert.deepEqual(ib.map((x) => x[0]), [{ n: 1 }, { n: 2 }]);
  const m = h.record(chA, 'marker', { client: a });
  await h.json(ctx.server.http().trigger(name, 'marker', {}), 'marker');
  await m.first();
  assert.equal(ra.items.length, 2, 'no duplicates');
});

test('triggerBatch with info returns per-event attributes', async () => {
  const client = ctx.server.client({ user: { id: 'info-user' } });
  const pub = h.uniq('batch-info');
  const pres = h.uniq('presence-batch-info');
  await h.subscribed(client, pub);
  await h.subscribed(client, pres);
  // cluster: the counts come from shared state the subscriber's node updates within
  // ~100 ms, so this is polled (bounded); single node: checked once
  await ctx.server.settle(async () => {
    const body = await h.json(ctx.server.http().triggerBatch([
      { channel: pub, name: 'x', data: {}, info: 'subscription_count' },
      { channel: pres, name: 'y', data: {}, info: 'user_count' },
    ]), 'triggerBatch with info');
    assert.ok(Array.isArray(body.batch), `body.batch is an array: ${JSON.stringify(body)}`);
    assert.equal(body.batch.length, 2);
    assert.equal(body.batch[0].subscription_count, 1, JSON.stringify(body));
    assert.equal(body.batch[1].user_count, 1, JSON.stringify(body));
  }, 'triggerBatch with info');
});
