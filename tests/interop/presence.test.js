'use strict';
// 5. Presence: members on subscription_succeeded (count, me, hash), member_added once per
//    user (not per socket), member_removed only when the user's last socket leaves.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

function memberIds(members) {
  const ids = [];
  members.each((m) => ids.push(m.id));
  return ids.sort();
}

/** pusher:unsubscribe has no ack; a ping/pong round trip proves the server processed it. */
async function unsubscribeAndSync(client, name) {
  const msgs = h.record(client.connection, 'message', { client });
  client.unsubscribe(name);
  client.send_event('pusher:ping', {});
  await msgs.first((ev) => ev.event === 'pusher:pong', 'pong after unsubscribe');
  msgs.stop();
}

async function marker(client, channel) {
  const m = h.record(channel, 'marker', { client });
  await h.json(ctx.server.http().trigger(channel.name, 'marker', {}), 'marker trigger');
  await m.first(() => true, 'marker');
  m.stop();
}

test('presence subscription_succeeded gives members incl. self (count, me, info)', async () => {
  const room = h.uniq('presence-room');
  const alice = ctx.server.client({ user: { id: 'alice', info: { name: 'Alice', n: 1 } } });
  const ch = await h.subscribed(alice, room);
  assert.equal(ch.members.count, 1);
  assert.deepEqual(ch.members.me, { id: 'alice', info: { name: 'Alice', n: 1 } });
  assert.deepEqual(memberIds(ch.members), ['alice']);

  const bob = ctx.server.client({ user: { id: 'bob', info: { name: 'Bob' } } });
  const chb = await h.subscribed(bob, room);
  assert.equal(chb.members.count, 2);
  assert.deepEqual(chb.members.me, { id: 'bob', info: { name: 'Bob' } });
  assert.deepEqual(memberIds(chb.members), ['alice', 'bob']);
  assert.deepEqual(chb.members.get('alice'), { id: 'alice', info: { name: 'Alice', n: 1 } });
});

test('member_added once per user; same user on a 2nd socket adds nothing; removed on last leave', async () => {
  const room = h.uniq('presence-dedup');
  const alice = ctx.server.client({ user: { id: 'alice', info: { name: 'Alice' } } });
  const chA = await h.subscribed(alice, room);
  const added = h.record(chA, 'pusher:member_added', { client: alice });
  const removed = h.record(chA, 'pusher:member_removed', { client: alice });

  const bob1 = ctx.server.client({ user: { id: 'bob', info: { name: 'Bob' } }, label: 'bob#1' });
  await h.subscribed(bob1, room);
  const [member] = await added.first(() => true, 'member_added for bob');
  assert.deepEqual(member, { id: 'bob', info: { name: 'Bob' } });
  assert.equal(chA.members.count, 2);

  // second socket for the SAME user
  const bob2 = ctx.server.client({ user: { id: 'bob', info: { name: 'Bob' } }, label: 'bob#2' });
  const chB2 = await h.subscribed(bob2, room);
  assert.equal(chB2.members.count, 2, 'members count users, not sockets');
  await marker(alice, chA);
  assert.equal(added.items.length, 1, 'no second member_added for the same user_id');
  assert.equal(chA.members.count, 2);

  // bob's first socket leaves: bob still has a socket, so no member_removed
  await unsubscribeAndSync(bob1, room);
  await marker(alice, chA);
  assert.equal(removed.items.length, 0, 'member_removed must wait for the last socket of the user');

  // bob's last socket leaves (disconnect): member_removed now
  bob2.disconnect();
  const [gone] = await removed.first(() => true, 'member_removed for bob');
  assert.equal(gone.id, 'bob');
  assert.equal(chA.members.count, 1);
  await marker(alice, chA);
  assert.equal(removed.items.length, 1, 'member_removed exactly once');
  assert.equal(added.items.length, 1);
});

test('member_removed is not sent when one of two sockets of a user disconnects', async () => {
  // the close of bob#1 is observed through a public channel's subscription_count (app 100001
  // has it on), which the server can only send after processing that close
  const room = h.uniq('presence-close');
  const probe = h.uniq('close-probe');
  const alice = ctx.server.client({ user: { id: 'alice' } });
  const chA = await h.subscribed(alice, room);
  const probeA = await h.subscribed(alice, probe);
  const counts = h.record(probeA, 'pusher:subscription_count', { client: alice });
  const removed = h.record(chA, 'pusher:member_removed', { client: alice });
  const added = h.record(chA, 'pusher:member_added', { client: alice });

  const bob1 = ctx.server.client({ user: { id: 'bob' }, label: 'bob#1' });
  const bob2 = ctx.server.client({ user: { id: 'bob' }, label: 'bob#2' });
  await h.subscribed(bob1, room);
  await h.subscribed(bob1, probe);
  await h.subscribed(bob2, room);
  await counts.first((d) => d.subscription_count === 2, 'subscription_count 2 on the probe');
  await added.first(() => true, 'member_added bob');

  bob1.disconnect();
  await counts.first((d) => d.subscription_count === 1, 'subscription_count 1 after bob#1 closed');
  await marker(alice, chA);
  assert.equal(removed.items.length, 0, 'bob still online through bob#2');
  assert.equal(chA.members.count, 2);

  bob2.disconnect();
  const [gone] = await removed.first(() => true, 'member_removed after the last socket closed');
  assert.equal(gone.id, 'bob');
  assert.equal(added.items.length, 1);
});

test('joining member does not get member_added for itself', async () => {
  const room = h.uniq('presence-self');
  const alice = ctx.server.client({ user: { id: 'alice' } });
  await h.connected(alice);
  const ch = alice.subscribe(room);
  const added = h.record(ch, 'pusher:member_added', { client: alice });
  await h.subscribed(alice, room);
  await marker(alice, ch);
  assert.equal(added.items.length, 0);
});
