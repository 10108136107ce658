'use strict';
// 13. subscription_count (on for app 100001): subscribers of a public channel get
//     pusher:subscription_count {subscription_count: N} as others come and go, and
//     pusher-js reflects it in channel.subscriptionCount.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

test('subscription_count follows subscribers joining and leaving', async () => {
  const name = h.uniq('counted');
  const a = ctx.server.client({ label: 'a' });
  await h.connected(a);
  const chA = a.subscribe(name);
  const counts = h.record(chA, 'pusher:subscription_count', { client: a });
  await h.subscribed(a, name);
  await counts.first((d) => d.subscription_count === 1, 'count 1 (self)');
  assert.equal(chA.subscriptionCount, 1);

  const b = ctx.server.client({ label: 'b' });
  const chB = await h.subscribed(b, name);
  await counts.first((d) => d.subscription_count === 2, 'count 2 after b joined');
  assert.equal(chA.subscriptionCount, 2);

  const c = ctx.server.client({ label: 'c' });
  await h.subscribed(c, name);
  await counts.first((d) => d.subscription_count === 3, 'count 3 after c joined');
  assert.equal(chA.subscriptionCount, 3);

  const countsB = h.record(chB, 'pusher:subscription_count', { client: b });
  c.unsubscribe(name);
  const [d] = await counts.until((items) => {
    const i = items.findIndex(([x]) => x.subscription_count === 3);
    return items.slice(i + 1).find(([x]) => x.subscription_count === 2);
  }, 'count back to 2 after c unsubscribed');
  assert.deepEqual(d, { subscription_count: 2 });
  assert.equal(chA.subscriptionCount, 2);
  await countsB.first((x) => x.subscription_count === 2, 'b sees 2 as well');

  b.disconnect();
  await counts.until((items) => {
    const last = items[items.length - 1];
    return last && last[0].subscription_count === 1 ? last : null;
  }, 'count 1 after b disconnected');
  assert.equal(chA.subscriptionCount, 1);
});

test('private channels get subscription_count too', async () => {
  const name = h.uniq('private-counted');
  const a = ctx.server.client();
  await h.connected(a);
  const ch = a.subscribe(name);
  const counts = h.record(ch, 'pusher:subscription_count', { client: a });
  await h.subscribed(a, name);
  const b = ctx.server.client();
  await h.subscribed(b, name);
  await counts.first((d) => d.subscription_count === 2, 'count 2');
  assert.equal(ch.subscriptionCount, 2);
});

test('no subscription_count on an app without it (100002)', async () => {
  const app = h.APPS.noClientEvents;
  const name = h.uniq('uncounted');
  const a = ctx.server.client({ app });
  await h.connected(a);
  const ch = a.subscribe(name);
  const counts = h.record(ch, 'pusher:subscription_count', { client: a });
  await h.subscribed(a, name);
  const b = ctx.server.client({ app });
  await h.subscribed(b, name);
  const m = h.record(ch, 'marker', { client: a });
  await h.json(ctx.server.http(app).trigger(name, 'marker', {}), 'marker');
  await m.first();
  assert.deepEqual(counts.items, []);
});

test('no subscription_count on presence channels (member events instead)', async () => {
  const name = h.uniq('presence-counted');
  const a = ctx.server.client({ user: { id: 'sc-a' } });
  await h.connected(a);
  const ch = a.subscribe(name);
  const counts = h.record(ch, 'pusher:subscription_count', { client: a });
  const added = h.record(ch, 'pusher:member_added', { client: a });
  await h.subscribed(a, name);
  const b = ctx.server.client({ user: { id: 'sc-b' } });
  await h.subscribed(b, name);
  await added.first();
  const m = h.record(ch, 'marker', { client: a });
  await h.json(ctx.server.http().trigger(name, 'marker', {}), 'marker');
  await m.first();
  assert.deepEqual(counts.items, []);
});
