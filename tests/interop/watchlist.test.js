'use strict';
// 11. Watchlist: a signed-in user with watchlist [B] gets online/offline events for B
//     through pusher.user.watchlist.bind('online' | 'offline').
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

function watch(client) {
  // one recorder for both names keeps the order between them
  const events = [];
  const listeners = new Set();
  const push = (e) => { events.push(e); for (const l of [...listeners]) l(); };
  client.user.watchlist.bind('online', push);
  client.user.watchlist.bind('offline', push);
  return {
    events,
    /** Resolves with the index of the first event at or after `from` named `name` listing `id`. */
    find(name, id, from = 0) {
      return h.waitFor(`watchlist ${name} for ${id}`, (resolve) => {
        const check = () => {
          for (let i = from; i < events.length; i += 1) {
            const e = events[i];
            if (e.name === name && Array.isArray(e.user_ids) && e.user_ids.includes(id)) { resolve(i); return; }
          }
        };
        listeners.add(check);
        check();
        return () => listeners.delete(check);
      }, { clients: [client] });
    },
  };
}

test('A watching B: online when B signs in, offline when B disconnects', async () => {
  const idA = h.uniq('watcher');
  const idB = h.uniq('watched');
  const a = ctx.server.client({ user: { id: idA, watchlist: [idB] }, label: 'A' });
  const w = watch(a);
  await h.connected(a);
  await h.signedIn(a);

  const b = ctx.server.client({ user: { id: idB }, label: 'B' });
  await h.connected(b);
  await h.signedIn(b);
  const onlineAt = await w.find('online', idB);
  assert.equal(w.events[onlineAt].name, 'online');

  b.disconnect();
  const offlineAt = await w.find('offline', idB, onlineAt + 1);
  assert.ok(offlineAt > onlineAt);
  assert.equal(a.connection.state, 'connected');
});

test('on signin the watcher gets the current status: B already online', async () => {
  const idB = h.uniq('watched');
  const b = ctx.server.client({ user: { id: idB }, label: 'B' });
  await h.connected(b);
  await h.signedIn(b);

  const idC = h.uniq('late-watcher');
  const c = ctx.server.client({ user: { id: idC, watchlist: [idB] }, label: 'C' });
  const w = watch(c);
  await h.connected(c);
  await h.signedIn(c);
  await w.find('online', idB);
});

test('B stays online while one of its two sockets remains; one offline after the last', async () => {
  const idA = h.uniq('watcher');
  const idB = h.uniq('watched');
  const probe = h.uniq('watch-probe');
  const a = ctx.server.client({ user: { id: idA, watchlist: [idB] }, label: 'A' });
  const w = watch(a);
  await h.connected(a);
  await h.signedIn(a);
  // the close of B#1 is observed through the subscription_count of a public channel
  // (app 100001 has it on): the server can only send it after processing that close
  const probeA = await h.subscribed(a, probe);
  const counts = h.record(probeA, 'pusher:subscription_count', { client: a });

  const b1 = ctx.server.client({ user: { id: idB }, label: 'B#1' });
  const b2 = ctx.server.client({ user: { id: idB }, label: 'B#2' });
  await h.connected(b1);
  await h.signedIn(b1);
  await h.subscribed(b1, probe);
  const onlineAt = await w.find('online', idB);
  await h.connected(b2);
  await h.signedIn(b2);
  await counts.first((d) => d.subscription_count === 2, 'subscription_count 2');

  const marker = async () => {
    const m = h.record(a.user, 'marker', { client: a });
    await h.json(ctx.server.http().sendToUser(idA, 'marker', {}), 'marker');
    await m.first();
    m.stop();
  };
  b1.disconnect();
  await counts.first((d) => d.subscription_count === 1, 'subscription_count 1 after B#1 closed');
  await marker();
  const later = () => w.events.slice(onlineAt + 1).filter((e) => e.user_ids.includes(idB));
  assert.deepEqual(later(), [], 'no watchlist change for B while B#2 is signed in');

  b2.disconnect();
  await w.find('offline', idB, onlineAt + 1);
  await marker();
  assert.deepEqual(later().map((e) => e.name), ['offline'], 'exactly one offline for B');
});
