'use strict';
// 4. private-encrypted channels: the `pusher` lib encrypts with encryptionMasterKeyBase64,
//    auth returns shared_secret, pusher-js (tweetnacl) decrypts to the original data.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.useServer({ before, after });

test('private-encrypted channel: event decrypts to the original data on the client', async () => {
  const masterKey = h.randomMasterKey();
  const client = ctx.server.client({ encryptionMasterKeyBase64: masterKey });
  const name = h.uniq('private-encrypted-vault');
  const channel = await h.subscribed(client, name);
  assert.ok(channel.key && channel.key.length === 32, 'pusher-js took the shared_secret from the auth');
  const got = h.record(channel, 'secret-note', { client });
  const raw = h.record(client.connection, 'message', { client });
  const data = { msg: 'top secret ☂', n: [1, 2, 3] };
  const api = ctx.server.http(h.APPS.main, { encryptionMasterKeyBase64: masterKey });
  await h.json(api.trigger(name, 'secret-note', data), 'encrypted trigger');
  const [d] = await got.first();
  assert.deepEqual(d, data);
  // on the wire the payload was opaque: {nonce, ciphertext}, not the plaintext
  const [frame] = await raw.first((ev) => ev.event === 'secret-note');
  assert.equal(typeof frame.data.nonce, 'string');
  assert.equal(typeof frame.data.ciphertext, 'string');
  assert.ok(!JSON.stringify(frame).includes('top secret'), 'server saw ciphertext only');
});

test('private-encrypted channel: batch trigger to an encrypted channel decrypts too', async () => {
  const masterKey = h.randomMasterKey();
  const client = ctx.server.client({ encryptionMasterKeyBase64: masterKey });
  const name = h.uniq('private-encrypted-batch');
  const channel = await h.subscribed(client, name);
  const got = h.record(channel, 'b', { client });
  const api = ctx.server.http(h.APPS.main, { encryptionMasterKeyBase64: masterKey });
  await h.json(api.triggerBatch([{ channel: name, name: 'b', data: { i: 7 } }]), 'encrypted batch');
  const [d] = await got.first();
  assert.deepEqual(d, { i: 7 });
});

test('private-encrypted channel with a wrong signature is refused like private', async () => {
  const masterKey = h.randomMasterKey();
  const client = ctx.server.client({
    encryptionMasterKeyBase64: masterKey,
    channelAuth: (socketId, channelName, signer) => {
      const good = signer.authorizeChannel(socketId, channelName);
      return { ...good, auth: `${h.APPS.main.key}:${'0'.repeat(64)}` };
    },
  });
  await h.connected(client);
  const channel = client.subscribe(h.uniq('private-encrypted-bad'));
  const how = await h.waitFor('refusal', (resolve, reject) => {
    const subErr = (d) => resolve({ via: 'subscription_error', d });
    const connErr = (e) => { if (e && e.type === 'PusherError') resolve({ via: 'pusher:error', d: e.data }); };
    const ok = () => reject(new Error('server accepted a bad signature on a private-encrypted channel'));
    channel.bind('pusher:subscription_error', subErr);
    channel.bind('pusher:subscription_succeeded', ok);
    client.connection.bind('error', connErr);
    return () => {
      channel.unbind('pusher:subscription_error', subErr);
      channel.unbind('pusher:subscription_succeeded', ok);
      client.connection.unbind('error', connErr);
    };
  }, { clients: [client] });
  assert.ok(how);
  assert.equal(client.connection.state, 'connected');
});
