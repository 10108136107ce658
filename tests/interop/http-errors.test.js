'use strict';
// 14. HTTP API errors as the `pusher` lib surfaces them (RequestError.status):
//     wrong secret 401, unknown app id 404, data over 10240 bytes 413.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

test('wrong secret: trigger is rejected with 401 and nothing is delivered', async () => {
  const name = h.uniq('http-err');
  const client = ctx.server.client();
  const ch = await h.subscribed(client, name);
  const leaked = h.record(ch, 'forged', { client });
  const bad = ctx.server.http(h.APPS.main, { secret: 'wrong-secret' });
  const err = await h.expectHttpError(() => bad.trigger(name, 'forged', { x: 1 }), 'trigger with wrong secret');
  assert.equal(err.status, 401, `status ${err.status} body ${err.body}`);
  const m = h.record(ch, 'marker', { client });
  await h.json(ctx.server.http().trigger(name, 'marker', {}), 'marker');
  await m.first();
  assert.equal(leaked.items.length, 0);
});

test('wrong secret: GET /channels is rejected with 401', async () => {
  const bad = ctx.server.http(h.APPS.main, { secret: 'wrong-secret' });
  const err = await h.expectHttpError(() => bad.get({ path: '/channels' }), 'GET /channels with wrong secret');
  assert.equal(err.status, 401);
});

test('the key of one app with the secret of another is rejected with 401', async () => {
  const bad = ctx.server.http(h.APPS.main, { secret: h.APPS.noClientEvents.secret });
  const err = await h.expectHttpError(() => bad.trigger('x', 'y', {}), 'cross-app secret');
  assert.equal(err.status, 401);
});

test('unknown app id is rejected with 404', async () => {
  const bad = ctx.server.http({ id: '999999', key: 'app-key', secret: 'app-secret' });
  const err = await h.expectHttpError(() => bad.trigger('x', 'y', {}), 'trigger to unknown app');
  assert.equal(err.status, 404);
});

test('event data over 10240 bytes is rejected with 413; at the limit it is accepted', async () => {
  const name = h.uniq('http-size');
  const client = ctx.server.client();
  const ch = await h.subscribed(client, name);
  const got = h.record(ch, 'big', { client });
  const api = ctx.server.http();
  const err = await h.expectHttpError(() => api.trigger(name, 'big', 'x'.repeat(10241)), 'oversized trigger');
  assert.equal(err.status, 413);
  // exactly 10240 bytes of data is within the limit
  await h.json(api.trigger(name, 'big', 'y'.repeat(10240)), 'trigger at the limit');
  const [d] = await got.first();
  assert.equal(d, 'y'.repeat(10240));
  assert.equal(got.items.length, 1, 'the oversized event was not delivered');
});

test('oversized event inside a batch is rejected with 413', async () => {
  const err = await h.expectHttpError(() => ctx.server.http().triggerBatch([
    { channel: 'ok-channel', name: 'small', data: 'ok' },
    { channel: 'ok-channel', name: 'big', data: 'z'.repeat(10241) },
  ]), 'oversized batch');
  assert.equal(err.status, 413);
});
