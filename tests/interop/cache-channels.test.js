'use strict';
// 12. Cache channels: pusher:cache_miss when nothing is cached; a new subscriber gets the
//     last event right after subscription_succeeded.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

/** Subscribes and records everything the channel emits, in order, with bind_global. */
function subscribeRecording(client, name) {
  const ch = client.subscribe(name);
  const seen = [];
  const listeners = new Set();
  ch.bind_global((event, data) => {
    seen.push({ event, data });
    for (const l of [...listeners]) l();
  });
  const until = (pred, what) => h.waitFor(what, (resolve) => {
    const check = () => { const i = seen.findIndex(pred); if (i >= 0) resolve(i); };
    listeners.add(check);
    check();
    return () => listeners.delete(check);
  }, { clients: [client] });
  return { ch, seen, until };
}

test('cache channel with nothing cached: pusher:cache_miss after subscription_succeeded', async () => {
  const client = ctx.server.client();
  await h.connected(client);
  const name = h.uniq('cache-empty');
  const s = subscribeRecording(client, name);
  const missAt = await s.until((e) => e.event === 'pusher:cache_miss', 'pusher:cache_miss');
  const okAt = s.seen.findIndex((e) => e.event === 'pusher:subscription_succeeded');
  assert.ok(okAt >= 0 && okAt < missAt, `subscription_succeeded first: ${JSON.stringify(s.seen)}`);
});

test('cache channel: a new subscriber immediately receives the last event', async () => {
  const name = h.uniq('cache-last');
  const first = ctx.server.client({ label: 'first' });
  await h.connected(first);
  const s1 = subscribeRecording(first, name);
  await s1.until((e) => e.event === 'pusher:subscription_succeeded', 'first subscribed');
  const api = ctx.server.http();
  await h.json(api.trigger(name, 'price', { v: 1 }), 'trigger 1');
  await h.json(api.trigger(name, 'price', { v: 2, note: 'latest' }), 'trigger 2');
  await s1.until((e) => e.event === 'price' && e.data.v === 2, 'first sees v2');

  const late = ctx.server.client({ label: 'late' });
  await h.connected(late);
  const s2 = subscribeRecording(late, name);
  const evAt = await s2.until((e) => e.event === 'price', 'cached event at the new subscriber');
  const okAt = s2.seen.findIndex((e) => e.event === 'pusher:subscription_succeeded');
  assert.ok(okAt >= 0 && okAt < evAt, `subscription_succeeded before the cached event: ${JSON.stringify(s2.seen)}`);
  assert.deepEqual(s2.seen[evAt].data, { v: 2, note: 'latest' }, 'the LAST event is replayed');
  assert.ok(!s2.seen.some((e) => e.event === 'pusher:cache_miss'), 'no cache_miss when something is cached');
  // the replay is one event, not the history
  const m = h.record(s2.ch, 'marker', { client: late });
  await h.json(api.trigger(name, 'marker', {}), 'marker');
  await m.first();
  assert.equal(s2.seen.filter((e) => e.event === 'price').length, 1);
});

test('private-cache channel: replay after auth too', async () => {
  const name = h.uniq('private-cache-doc');
  const api = ctx.server.http();
  await h.json(api.trigger(name, 'state', { rev: 9 }), 'trigger before anyone subscribed');
  const c = ctx.server.client();
  await h.connected(c);
  const s = subscribeRecording(c, name);
  const at = await s.until((e) => e.event === 'state', 'cached state');
  assert.deepEqual(s.seen[at].data, { rev: 9 });
});

test('presence-cache channel: cache_miss when nothing is cached', async () => {
  const c = ctx.server.client({ user: { id: 'cacher' } });
  await h.connected(c);
  const s = subscribeRecording(c, h.uniq('presence-cache-room'));
  await s.until((e) => e.event === 'pusher:cache_miss', 'pusher:cache_miss');
});

test('client events are not cached', async () => {
  const name = h.uniq('private-cache-client');
  const a = ctx.server.client({ label: 'a' });
  const b = ctx.server.client({ label: 'b' });
  const chA = await h.subscribed(a, name);
  const chB = await h.subscribed(b, name);
  const got = h.record(chB, 'client-draft', { client: b });
  chA.trigger('client-draft', { text: 'x' });
  await got.first();
  const late = ctx.server.client({ label: 'late' });
  await h.connected(late);
  const s = subscribeRecording(late, name);
  // whichever comes first after subscribing: the cache_miss, or a replayed event
  const at = await s.until((e) => e.event === 'pusher:cache_miss' || !e.event.startsWith('pusher:'),
    'cache_miss or a replayed event');
  assert.equal(s.seen[at].event, 'pusher:cache_miss',
    `client event must not be cached, but the new subscriber got ${JSON.stringify(s.seen[at])}`);
});
