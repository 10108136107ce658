"""Start a real `rtc serve` and real pusher-js agents for the Python interop checks.

Only 127.0.0.1 is contacted; every wait is bounded (INTEROP_TIMEOUT_S, default 5 s).
"""

import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(INTEROP))
CONFIG_TEMPLATE = os.path.join(INTEROP, "lib", "server.toml")
AGENT = os.path.join(INTEROP, "lib", "pusherjs-agent.js")
TIMEOUT = float(os.environ.get("INTEROP_TIMEOUT_S", "5"))
START_TIMEOUT = float(os.environ.get("INTEROP_START_TIMEOUT_S", "10"))
LISTEN_RE = re.compile(r"^rtc listening on http://127\.0\.0\.1:(\d+)")

MAIN_APP = {"id": "100001", "key": "app-key", "secret": "app-secret"}
OTHER_APP = {"id": "100002", "key": "app-key-2", "secret": "app-secret-2"}


def _pump(stream, q):
    for line in iter(stream.readline, ""):
        q.put(line.rstrip("\n"))
    q.put(None)


class Server:
    """`rtc serve --config <copy of lib/server.toml> --host 127.0.0.1 --port 0`."""

    def __init__(self):
        binary = os.environ.get("RTC_BIN") or os.path.join(REPO_ROOT, "target", "debug", "rtc")
        if not os.path.exists(binary):
            raise RuntimeError("rtc binary not found at %s: run `cargo build` or set RTC_BIN" % binary)
        self.dir = tempfile.mkdtemp(prefix="rtc-interop-py-")
        self.config = os.path.join(self.dir, "rtc.toml")
        shutil.copyfile(CONFIG_TEMPLATE, self.config)
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--config", self.config, "--host", "127.0.0.1", "--port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        lines = queue.Queue()
        threading.Thread(target=_pump, args=(self.proc.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        seen = []
        self.port = None
        while self.port is None:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise RuntimeError("rtc did not print its listening line within %ss; stdout=%r stderr=%s"
                                   % (START_TIMEOUT, seen, self.stderr_tail()))
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait(timeout=TIMEOUT)
                raise RuntimeError("rtc exited (code %s) before listening; stdout=%r stderr=%s"
                                   % (code, seen, self.stderr_tail()))
            seen.append(line)
            m = LISTEN_RE.match(line)
            if m:
                self.port = int(m.group(1))

    def stderr_tail(self, n=3000):
        try:
            with open(self.stderr_path) as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self._stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Agent:
    """A real pusher-js client (lib/pusherjs-agent.js) printing what it receives."""

    def __init__(self, server, app=MAIN_APP, subscribe=(), user=None, signin=False, master_key=None):
        opts = {"port": server.port, "app": app, "subscribe": list(subscribe), "signin": signin}
        if user:
            opts["user"] = user
        if master_key:
            opts["encryptionMasterKeyBase64"] = master_key
        self.proc = subprocess.Popen(
            ["node", AGENT, json.dumps(opts)], cwd=INTEROP,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=_pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        ready = self.expect(lambda m: m.get("type") == "ready", "ready", timeout=3 * TIMEOUT)
        self.socket_id = ready["socket_id"]

    def expect(self, pred, what, timeout=TIMEOUT):
        """Next message (in arrival order, consuming) matching pred; fails on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out after %ss waiting for %s; agent saw %r" % (timeout, what, self.seen))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                err = self.proc.stderr.read() if self.proc.poll() is not None else ""
                raise AssertionError("agent exited while waiting for %s; saw %r; stderr=%s" % (what, self.seen, err))
            try:
                msg = json.loads(line)
            except ValueError:
                self.seen.append(line)
                continue
            self.seen.append(msg)
            if msg.get("type") == "error":
                raise AssertionError("agent failed: %s" % msg.get("message"))
            if pred(msg):
                return msg

    def event(self, channel, name, timeout=TIMEOUT):
        return self.expect(lambda m: m.get("type") == "event" and m.get("channel") == channel
                           and m.get("event") == name, "%s on %s" % (name, channel), timeout)

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        for s in (self.proc.stdout, self.proc.stderr):
            try:
                s.close()
            except OSError:
                pass


_counter = [0]


def uniq(prefix):
    _counter[0] += 1
    return "%s-py%d-%d" % (prefix, os.getpid(), _counter[0])
