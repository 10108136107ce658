// Reads {"key", "secret", "headers", "body"} as JSON on stdin (or an array of them) and
// prints "valid" or "invalid" (one line per webhook) as judged by the official pusher
// library: pusher.webhook({ headers, rawBody }).isValid(), which checks X-Pusher-Key,
// the HMAC-SHA256 X-Pusher-Signature of the raw body and Content-Type: application/json.
"use strict";
const Pusher = require("pusher");

function check({ key, secret, headers, body }) {
  const lower = {};
  for (const [name, value] of Object.entries(headers)) lower[name.toLowerCase()] = value;
  const pusher = new Pusher({ appId: "1", key, secret, cluster: "mt1" });
  return pusher.webhook({ headers: lower, rawBody: body }).isValid() ? "valid" : "invalid";
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const parsed = JSON.parse(input);
  const items = Array.isArray(parsed) ? parsed : [parsed];
  process.stdout.write(items.map(check).join("\n") + "\n");
});
