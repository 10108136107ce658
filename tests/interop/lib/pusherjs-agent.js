'use strict';
// A real pusher-js client driven from another language's test (the Python suite).
// Usage: node lib/pusherjs-agent.js '<json options>'
//   options: { port, app: {id, key, secret}, user?: {id, info?, watchlist?},
//              subscribe?: [channel names], signin?: bool, encryptionMasterKeyBase64? }
// Prints one JSON object per line on stdout:
//   {"type":"ready","socket_id":"..."}               connected, subscribed, signed in
//   {"type":"event","channel","event","data"}  any non-internal channel event
//   {"type":"user_event","event","data"}              pusher.user.bind_global events
//   {"type":"error","message"}                        setup failed (then exits 1)
// Exits when stdin closes, or after INTEROP_AGENT_LIFETIME_MS (default 60 s).

const h = require('./harness');

const opts = JSON.parse(process.argv[2] || '{}');
const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const lifetime = setTimeout(() => {
  out({ type: 'error', message: 'agent lifetime exceeded' });
  process.exit(2);
}, Number(process.env.INTEROP_AGENT_LIFETIME_MS || 60000));
lifetime.unref();

const server = { port: opts.port };
const client = h.makeClient(server, {
  app: opts.app,
  user: opts.user,
  encryptionMasterKeyBase64: opts.encryptionMasterKeyBase64,
  label: 'agent',
});

function shutdown(code) {
  try { client.disconnect(); } catch (_) { /* ignore */ }
  process.exit(code);
}
process.stdin.on('end', () => shutdown(0));
process.stdin.on('close', () => shutdown(0));
process.stdin.resume();

(async () => {
  await h.connected(client);
  for (const name of opts.subscribe || []) {
    const ch = await h.subscribed(client, name);
    ch.bind_global((event, data) => {
      if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) return;
      out({ type: 'event', channel: name, event, data });
    });
  }
  if (opts.signin) {
    await h.signedIn(client);
    client.user.bind_global((event, data) => out({ type: 'user_event', event, data }));
  }
  out({ type: 'ready', socket_id: client.connection.socket_id });
})().catch((e) => {
  out({ type: 'error', message: String(e && e.stack ? e.stack : e) });
  shutdown(1);
});
