"""15. The official Python `pusher` library (PyPI) against rtc.

Its signed requests differ from Node's (e.g. body_md5 on GETs, `channels` always a list),
so every call here goes through the unmodified library. Receivers are real pusher-js
clients (lib/pusherjs-agent.js).

Run: tests/interop/.venv/bin/python tests/interop/python/test_pusher_python.py
(INTEROP_CLUSTER=1: against a private redis-server and 2 rtc nodes, agents spread over both.)
"""

import base64
import os
import sys
import unittest

import pusher
from pusher import errors as perrors

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rtc_harness as h  # noqa: E402

# the HTTP calls go to 127.0.0.1 only: never through a proxy from the environment
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def client(server, app=h.MAIN_APP, **kw):
    opts = dict(app_id=app["id"], key=app["key"], secret=app["secret"], host="127.0.0.1",
                port=server.http_port, ssl=False, timeout=h.TIMEOUT)
    opts.update(kw)
    return pusher.Pusher(**opts)


class PythonPusherInterop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = h.Server()
        cls.api = client(cls.server)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.server.reset_rotation()

    def agent(self, **kw):
        a = h.Agent(self.server, **kw)
        self.addCleanup(a.close)
        return a

    def test_trigger_received_by_pusher_js(self):
        ch = h.uniq("py-public")
        a = self.agent(subscribe=[ch])
        data = {"msg": "from python", "unicode": "h\u00e9llo \u2603", "n": [1, 2.5, None, True]}
        self.assertEqual(self.api.trigger(ch, "py-event", data), {})
        got = a.event(ch, "py-event")
        self.assertEqual(got["data"], data)

    def test_trigger_to_several_channels_incl_private(self):
        pub, priv = h.uniq("py-multi"), h.uniq("private-py-multi")
        a = self.agent(subscribe=[pub, priv])
        self.api.trigger([pub, priv], "both", {"k": "v"})
        got = a.events_any_order([(pub, "both"), (priv, "both")])
        self.assertEqual(got[(pub, "both")]["data"], {"k": "v"})
        self.assertEqual(got[(priv, "both")]["data"], {"k": "v"})

    def test_trigger_with_socket_id_excludes_that_client(self):
        ch = h.uniq("py-excl")
        a = self.agent(subscribe=[ch])
        b = self.agent(subscribe=[ch])
        self.api.trigger(ch, "update", {"v": 1}, socket_id=a.socket_id)
        self.api.trigger(ch, "marker", {"v": 2})
        self.assertEqual(b.event(ch, "update")["data"], {"v": 1})
        a.event(ch, "marker")
        self.assertFalse([m for m in a.seen if m.get("event") == "update"], "excluded socket got the event")

    def test_trigger_batch(self):
        c1, c2 = h.uniq("py-batch-a"), h.uniq("private-py-batch-b")
        a = self.agent(subscribe=[c1, c2])
        self.api.trigger_batch([
            {"channel": c1, "name": "first", "data": {"i": 1}},
            {"channel": c2, "name": "second", "data": "two"},
        ])
        got = a.events_any_order([(c1, "first"), (c2, "second")])
        self.assertEqual(got[(c1, "first")]["data"], {"i": 1})
        self.assertEqual(got[(c2, "second")]["data"], "two")

    def test_encrypted_trigger_decrypts_in_pusher_js(self):
        key = base64.b64encode(os.urandom(32)).decode()
        ch = h.uniq("private-encrypted-py")
        a = self.agent(subscribe=[ch], master_key=key)
        enc = client(self.server, encryption_master_key_base64=key)
        enc.trigger(ch, "sealed", {"secret": "s3cr3t"})
        self.assertEqual(a.event(ch, "sealed")["data"], {"secret": "s3cr3t"})

    def test_channels_info(self):
        tag = h.uniq("py-info")
        room = "presence-" + tag
        self.agent(subscribe=[tag + "-x", room], user={"id": "py-user-1"})
        self.agent(subscribe=[room], user={"id": "py-user-2"})

        def check():
            body = self.api.channels_info(prefix_filter=tag)
            self.assertEqual(sorted(body["channels"].keys()), [tag + "-x"])
            body = self.api.channels_info(prefix_filter="presence-" + tag, attributes=["user_count"])
            self.assertEqual(body["channels"], {room: {"user_count": 2}})
        self.server.settle(check, "channels_info")

    def test_channel_info_with_info(self):
        ch = h.uniq("py-chinfo")
        room = h.uniq("presence-py-chinfo")
        self.agent(subscribe=[ch, room], user={"id": "same"})
        self.agent(subscribe=[ch, room], user={"id": "same"})

        def check():
            body = self.api.channel_info(ch, ["subscription_count"])
            self.assertEqual(body.get("occupied"), True, body)
            self.assertEqual(body.get("subscription_count"), 2, body)
            body = self.api.channel_info(room, ["user_count", "subscription_count"])
            self.assertEqual(body.get("occupied"), True, body)
            self.assertEqual(body.get("user_count"), 1, body)
            self.assertEqual(body.get("subscription_count"), 2, body)
        self.server.settle(check, "channel_info")
        self.assertEqual(self.api.channel_info(h.uniq("py-nobody")).get("occupied"), False)

    def test_users_info(self):
        room = h.uniq("presence-py-users")
        self.agent(subscribe=[room], user={"id": "py-u1", "info": {"name": "One"}})
        self.agent(subscribe=[room], user={"id": "py-u2"})

        def check():
            body = self.api.users_info(room)
            self.assertEqual(sorted(u["id"] for u in body["users"]), ["py-u1", "py-u2"])
        self.server.settle(check, "users_info")

    def test_send_to_user(self):
        uid = h.uniq("py-signed")
        a = self.agent(user={"id": uid}, signin=True)
        self.api.send_to_user(uid, "direct", {"hello": uid})
        got = a.expect(lambda m: m.get("type") == "user_event" and m.get("event") == "direct", "user event")
        self.assertEqual(got["data"], {"hello": uid})

    def test_wrong_secret_is_401(self):
        bad = client(self.server, secret="wrong-secret")
        with self.assertRaises(perrors.PusherBadAuth):
            bad.trigger("py-anything", "x", {})
        with self.assertRaises(perrors.PusherBadAuth):
            bad.channels_info()
        with self.assertRaises(perrors.PusherBadAuth):
            bad.channel_info("py-anything", ["subscription_count"])

    def test_unknown_app_is_404(self):
        bad = client(self.server, app={"id": "999999", "key": "app-key", "secret": "app-secret"})
        with self.assertRaises(perrors.PusherBadStatus) as ctx:
            bad.trigger("py-anything", "x", {})
        self.assertTrue(str(ctx.exception).startswith("404"), str(ctx.exception))

    def test_oversized_data_is_413(self):
        # the python lib refuses > 30 KB itself; between 10 KB and that the server must say 413
        with self.assertRaises(perrors.PusherBadStatus) as ctx:
            self.api.trigger("py-big", "big", "x" * 10241)
        self.assertTrue(str(ctx.exception).startswith("413"), str(ctx.exception))


def main():
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(PythonPusherInterop)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    print("python: %d passed, %d failed" % (passed, failed))
    return 0 if result.wasSuccessful() and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
