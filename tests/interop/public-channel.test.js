'use strict';
// 2. Public channels: subscription_succeeded; events triggered through the `pusher`
//    HTTP lib reach bound callbacks with the exact data.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

test('subscribe to a public channel: pusher:subscription_succeeded', async () => {
  const client = ctx.server.client();
  const name = h.uniq('public');
  const channel = await h.subscribed(client, name);
  assert.equal(channel.subscribed, true);
  assert.equal(channel.name, name);
});

test('trigger via HTTP lib: bound event receives the exact data object', async () => {
  const client = ctx.server.client();
  const name = h.uniq('public');
  const channel = await h.subscribed(client, name);
  const got = h.record(channel, 'order-shipped', { client });
  const data = {
    id: 42,
    text: 'héllo "quoted" \\ back/slash \u2603 😀',
    nested: { list: [1, 2.5, null, true, 'x'], empty: {} },
  };
  const body = await h.json(ctx.server.http().trigger(name, 'order-shipped', data), 'trigger');
  assert.deepEqual(body, {});
  const [received] = await got.first();
  assert.deepEqual(received, data);
});

test('string data is delivered as the same string', async () => {
  const client = ctx.server.client();
  const name = h.uniq('public');
  const channel = await h.subscribed(client, name);
  const got = h.record(channel, 'note', { client });
  await h.json(ctx.server.http().trigger(name, 'note', 'just a plain string'), 'trigger');
  const [received] = await got.first();
  assert.equal(received, 'just a plain string');
});

test('one trigger to several channels reaches each channel once', async () => {
  const client = ctx.server.client();
  const names = [h.uniq('public-a'), h.uniq('public-b'), h.uniq('public-c')];
  const recs = [];
  for (const n of names) {
    const ch = await h.subscribed(client, n);
    recs.push(h.record(ch, 'multi', { client, label: n }));
  }
  await h.json(ctx.server.http().trigger(names, 'multi', { n: 1 }), 'trigger to 3 channels');
  for (const r of recs) {
    const [d] = await r.first();
    assert.deepEqual(d, { n: 1 });
  }
  // marker on the first channel: everything before it has arrived, so counts are final
  const marker = h.record(client.channel(names[0]), 'marker', { client });
  await h.json(ctx.server.http().trigger(names[0], 'marker', {}), 'marker');
  await marker.first();
  for (const r of recs) assert.equal(r.items.length, 1, `${r.label} got the event once`);
});

test('unsubscribed channel no longer receives events', async () => {
  const client = ctx.server.client();
  const gone = h.uniq('public-gone');
  const kept = h.uniq('public-kept');
  const goneCh = await h.subscribed(client, gone);
  const keptCh = await h.subscribed(client, kept);
  const goneEvents = h.record(goneCh, 'ev', { client });
  client.unsubscribe(gone);
  // pusher:unsubscribe has no ack; a round trip on the same socket orders it before the trigger
  const pong = h.record(client.connection, 'message', { client });
  client.send_event('pusher:ping', {});
  await pong.first((ev) => ev.event === 'pusher:pong', 'pong after unsubscribe');
  const marker = h.record(keptCh, 'marker', { client });
  await h.json(ctx.server.http().trigger(gone, 'ev', { x: 1 }), 'trigger to unsubscribed channel');
  await h.json(ctx.server.http().trigger(kept, 'marker', {}), 'marker');
  await marker.first();
  assert.equal(goneEvents.items.length, 0);
  const frames = client.__interop.frames.filter((f) => f.startsWith('<-') && f.includes(`"channel":"${gone}"`) && f.includes('"event":"ev"'));
  assert.deepEqual(frames, [], 'no frame for the unsubscribed channel reached the socket');
});
