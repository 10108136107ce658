'use strict';
// 8. Channel queries through the `pusher` HTTP lib: GET /channels (prefix filter,
//    user_count), GET /channels/{name} (occupied, user_count, subscription_count),
//    GET /channels/{name}/users, and `info` on trigger.
//    In cluster mode (INTEROP_CLUSTER=1) the subscribers are spread over both nodes and
//    the queries go to one of them; answers come from shared state the other node updates
//    within ~100 ms, so `settle` polls (bounded) until the expected answer. Single node:
//    `settle` runs the check once.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

async function get(path, params, label = `GET ${path}`) {
  return h.json(ctx.server.http().get({ path, params }), label);
}

/** Runs check(await get(...)) until it passes (cluster) or once (single); returns the body. */
function getSettled(path, params, check, label = `GET ${path}${params ? ` ${JSON.stringify(params)}` : ''}`) {
  return ctx.server.settle(async () => {
    const body = await get(path, params, label);
    check(body);
    return body;
  }, label);
}

test('GET /channels lists occupied channels, filter_by_prefix narrows the list', async () => {
  const tag = h.uniq('q');
  const names = [`${tag}-one`, `${tag}-two`, `private-${tag}-three`];
  const c1 = ctx.server.client();
  const c2 = ctx.server.client();
  await h.subscribed(c1, names[0]);
  await h.subscribed(c2, names[0]);
  await h.subscribed(c1, names[1]);
  await h.subscribed(c2, names[2]);

  await getSettled('/channels', undefined, (all) => {
    assert.equal(typeof all.channels, 'object');
    for (const n of names) assert.ok(n in all.channels, `${n} listed in ${JSON.stringify(all)}`);
  });

  const pref = await get('/channels', { filter_by_prefix: `${tag}-` });
  assert.deepEqual(Object.keys(pref.channels).sort(), [names[0], names[1]]);

  const priv = await get('/channels', { filter_by_prefix: `private-${tag}` });
  assert.deepEqual(Object.keys(priv.channels), [names[2]]);

  const none = await get('/channels', { filter_by_prefix: `${tag}-nothing` });
  assert.deepEqual(none, { channels: {} });
});

test('GET /channels?filter_by_prefix=presence-&info=user_count counts users, not sockets', async () => {
  const room = h.uniq('presence-count');
  const ann1 = ctx.server.client({ user: { id: 'ann' } });
  const ann2 = ctx.server.client({ user: { id: 'ann' } });
  const ben = ctx.server.client({ user: { id: 'ben' } });
  for (const c of [ann1, ann2, ben]) await h.subscribed(c, room);
  await getSettled('/channels', { filter_by_prefix: 'presence-', info: 'user_count' }, (body) => {
    assert.deepEqual(body.channels[room], { user_count: 2 });
  });
});

test('GET /channels with info=user_count but no presence- prefix is a 400', async () => {
  const err = await h.expectHttpError(
    () => ctx.server.http().get({ path: '/channels', params: { info: 'user_count' } }),
    'GET /channels?info=user_count');
  assert.equal(err.status, 400);
});

test('GET /channels/{name} with info=subscription_count for a public channel', async () => {
  const name = h.uniq('q-public');
  const c1 = ctx.server.client();
  const c2 = ctx.server.client();
  await h.subscribed(c1, name);
  await h.subscribed(c2, name);
  await getSettled(`/channels/${name}`, { info: 'subscription_count' }, (body) => {
    assert.equal(body.occupied, true);
    assert.equal(body.subscription_count, 2);
  });
});

test('GET /channels/{name} with info=user_count,subscription_count for presence', async () => {
  const room = h.uniq('presence-info');
  const a1 = ctx.server.client({ user: { id: 'a' } });
  const a2 = ctx.server.client({ user: { id: 'a' } });
  const b = ctx.server.client({ user: { id: 'b' } });
  for (const c of [a1, a2, b]) await h.subscribed(c, room);
  await getSettled(`/channels/${room}`, { info: 'user_count,subscription_count' }, (body) => {
    assert.equal(body.occupied, true);
    assert.equal(body.user_count, 2);
    assert.equal(body.subscription_count, 3);
  });
});

test('GET /channels/{name}: occupied false for a channel nobody is on', async () => {
  const body = await get(`/channels/${h.uniq('q-empty')}`, { info: 'subscription_count' });
  assert.equal(body.occupied, false);
  if ('subscription_count' in body) assert.equal(body.subscription_count, 0);
});

test('GET /channels/{name}: occupied becomes false after the last subscriber leaves', async () => {
  const name = h.uniq('q-leave');
  const c = ctx.server.client();
  await h.subscribed(c, name);
  await getSettled(`/channels/${name}`, undefined, (body) => assert.equal(body.occupied, true));
  const msgs = h.record(c.connection, 'message', { client: c });
  c.unsubscribe(name);
  c.send_event('pusher:ping', {});
  await msgs.first((ev) => ev.event === 'pusher:pong', 'pong after unsubscribe');
  await getSettled(`/channels/${name}`, undefined, (body) => assert.equal(body.occupied, false));
  await getSettled('/channels', { filter_by_prefix: name }, (list) => assert.deepEqual(list.channels, {}));
});

test('GET /channels/{name} with user_count on a public channel is a 400', async () => {
  const err = await h.expectHttpError(
    () => ctx.server.http().get({ path: `/channels/${h.uniq('q-pub')}`, params: { info: 'user_count' } }),
    'GET /channels/public?info=user_count');
  assert.equal(err.status, 400);
});

test('GET /channels/{name}/users lists presence users once each', async () => {
  const room = h.uniq('presence-users');
  const clients = [
    ctx.server.client({ user: { id: 'u1', info: { n: 1 } } }),
    ctx.server.client({ user: { id: 'u2' } }),
    ctx.server.client({ user: { id: 'u2' } }),
  ];
  for (const c of clients) await h.subscribed(c, room);
  await getSettled(`/channels/${room}/users`, undefined, (body) => {
    assert.ok(Array.isArray(body.users), JSON.stringify(body));
    assert.deepEqual(body.users.map((u) => u.id).sort(), ['u1', 'u2']);
    for (const u of body.users) assert.equal(typeof u.id, 'string');
  });
});

test('GET /channels/{name}/users on a non-presence channel is a 400', async () => {
  const err = await h.expectHttpError(
    () => ctx.server.http().get({ path: `/channels/${h.uniq('private-x')}/users` }),
    'GET users of a private channel');
  assert.equal(err.status, 400);
});

test('trigger with info=subscription_count returns channels.{name}.subscription_count', async () => {
  const name = h.uniq('q-trigger-info');
  const c1 = ctx.server.client();
  const c2 = ctx.server.client();
  await h.subscribed(c1, name);
  await h.subscribed(c2, name);
  await ctx.server.settle(async () => {
    const body = await h.json(ctx.server.http().trigger(name, 'x', {}, { info: 'subscription_count' }), 'trigger with info');
    assert.equal(body.channels[name].subscription_count, 2, JSON.stringify(body));
  }, 'trigger with info=subscription_count');
});

test('trigger with info=user_count on presence returns channels.{name}.user_count', async () => {
  const room = h.uniq('presence-trigger-info');
  const c1 = ctx.server.client({ user: { id: 'p1' } });
  const c2 = ctx.server.client({ user: { id: 'p2' } });
  await h.subscribed(c1, room);
  await h.subscribed(c2, room);
  await ctx.server.settle(async () => {
    const body = await h.json(ctx.server.http().trigger(room, 'x', {}, { info: 'user_count' }), 'trigger with info');
    assert.equal(body.channels[room].user_count, 2, JSON.stringify(body));
  }, 'trigger with info=user_count');
});

test('trigger to several channels with info returns each channel', async () => {
  const a = h.uniq('q-multi-a');
  const b = h.uniq('q-multi-b');
  const c = ctx.server.client();
  await h.subscribed(c, a);
  await ctx.server.settle(async () => {
    const body = await h.json(ctx.server.http().trigger([a, b], 'x', {}, { info: 'subscription_count' }), 'trigger with info');
    assert.equal(body.channels[a].subscription_count, 1, JSON.stringify(body));
    // an unoccupied channel may be left out; if it is listed its count must be 0
    if (body.channels[b] !== undefined) assert.equal(body.channels[b].subscription_count, 0);
  }, 'trigger to 2 channels with info');
});

test('server-to-user channels are not listed in GET /channels', async () => {
  const id = h.uniq('hidden');
  const c = ctx.server.client({ user: { id } });
  await h.connected(c);
  await h.signedIn(c);
  // a public channel subscribed AFTER the signin: once it is listed, the node has recorded
  // what it does for the signin too (a node's updates are applied in order)
  const witness = h.uniq('q-after-signin');
  await h.subscribed(c, witness);
  const body = await getSettled('/channels', undefined, (b) => assert.ok(witness in b.channels, JSON.stringify(b)));
  const leaked = Object.keys(body.channels).filter((n) => n.startsWith('#'));
  assert.deepEqual(leaked, []);
});
