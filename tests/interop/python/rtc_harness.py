"""Start a real `rtc serve` and real pusher-js agents for the Python interop checks.

Only 127.0.0.1 is contacted; every wait is bounded (INTEROP_TIMEOUT_S, default 5 s).
"""

import json
import os
import queue
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

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


CLUSTER = os.environ.get("INTEROP_CLUSTER") == "1"
CLUSTER_READY_TIMEOUT = float(os.environ.get("INTEROP_CLUSTER_READY_MS", "15000")) / 1000
SETTLE_TIMEOUT = float(os.environ.get("INTEROP_SETTLE_MS", str(int(TIMEOUT * 1000)))) / 1000
CLUSTER_HTTP_NODE = int(os.environ.get("INTEROP_CLUSTER_HTTP_NODE", "2"))
ADMIN_TOKEN = "test-admin-token"  # lib/server.toml [server] admin_token
READY_RE = re.compile(r"Ready to accept connections")

# only 127.0.0.1 is contacted: never through a proxy from the environment
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _Process:
    """A child process whose stdout is read until a line matches `ready` (bounded)."""

    def __init__(self, argv, ready, label, directory):
        self.label = label
        self.stderr_path = os.path.join(directory, "%s.stderr.log" % re.sub(r"[^\w.-]", "_", label))
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True)
        lines = queue.Queue()
        threading.Thread(target=_pump, args=(self.proc.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        seen = []
        self.match = None
        while self.match is None:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise RuntimeError("%s did not print a line matching %r within %ss; stdout=%r stderr=%s"
                                   % (label, ready.pattern, START_TIMEOUT, seen, self.stderr_tail()))
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait(timeout=TIMEOUT)
                tail = self.stderr_tail()
                self.kill()
                raise RuntimeError("%s exited (code %s) before it was ready; stdout=%r stderr=%s"
                                   % (label, code, seen, tail))
            seen.append(line)
            self.match = ready.search(line)

    def stderr_tail(self, n=3000):
        try:
            with open(self.stderr_path) as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        if not self._stderr.closed:
            self._stderr.close()


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster_port():
    """A free port for a cluster-enabled redis-server, with its cluster bus port (10000
    higher; redis-server refuses a port above 55535) free too. Both lie below the
    kernel's ephemeral range, so no outgoing connection or port-0 listener can take one
    between this pick and redis-server's bind (a node that loses that race exits at once)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    low, high = 10000, min(ephemeral_low - 10000, 55536)
    start = low + (os.getpid() * 7919 + _CLUSTER_PORTS_TAKEN[0]) % (high - low)
    for i in range(high - low):
        port = low + (start - low + i) % (high - low)
        _CLUSTER_PORTS_TAKEN[0] += 1
        if _port_free(port) and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port pair (P, P + 10000) below the ephemeral range for a Redis Cluster node")


_CLUSTER_PORTS_TAKEN = [0]


def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def admin_stats(port):
    req = urllib.request.Request("http://127.0.0.1:%d/admin/stats" % port,
                                 headers={"Authorization": "Bearer " + ADMIN_TOKEN})
    with _LOCAL.open(req, timeout=2) as res:
        return json.loads(res.read().decode())


class _RedisCluster:
    """INTEROP_ENGINE=redis-cluster: three cluster-enabled redis-servers on free ports
    joined by `redis-cli --cluster create`, ready once each says cluster_state:ok
    (bounded); `url` is the `redis-cluster://` seed list."""

    def __init__(self, directory):
        self.servers = []
        try:
            for _ in range(3):
                port = _cluster_port()
                r = _Process(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file",
                              "nodes-%d.conf" % port, "--dir", directory, "--cluster-node-timeout", "2000"],
                             READY_RE, "redis-server (cluster)", directory)
                r.port = port
                self.servers.append(r)
            hosts = ["127.0.0.1:%d" % r.port for r in self.servers]
            subprocess.run(["redis-cli", "--cluster", "create"] + hosts + ["--cluster-yes"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
            deadline = time.monotonic() + 20
            for r in self.servers:
                while True:
                    info = subprocess.run(["redis-cli", "-p", str(r.port), "cluster", "info"], capture_output=True,
                                          text=True, timeout=2).stdout
                    if "cluster_state:ok" in info:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("redis cluster :%d not ok: %s" % (r.port, info[:200]))
                    time.sleep(0.05)  # CLUSTER INFO is only visible by polling; bounded
            self.url = "redis-cluster://" + ",".join(hosts)
        except BaseException:
            self.kill()
            raise

    def kill(self):
        for r in self.servers:
            r.kill()


class Server:
    """`rtc serve --config <copy of lib/server.toml> --host 127.0.0.1 --port 0`.

    With INTEROP_CLUSTER=1 (or cluster=True): a private redis-server and two nodes n1, n2
    of cluster `interop-<random>`, ready once both report live_nodes == 2, pub/sub
    connected and state "serving". Agents alternate n1, n2, ... from n1 in every test
    (reset_rotation); HTTP API calls go to `http_port` (n2 unless
    INTEROP_CLUSTER_HTTP_NODE=1), so the first agent of a test is on the other node.
    """

    def __init__(self, cluster=None):
        self.cluster = CLUSTER if cluster is None else cluster
        binary = os.environ.get("RTC_BIN") or os.path.join(REPO_ROOT, "target", "debug", "rtc")
        if not os.path.exists(binary):
            raise RuntimeError("rtc binary not found at %s: run `cargo build` or set RTC_BIN" % binary)
        self.dir = tempfile.mkdtemp(prefix="rtc-interop-py-")
        self.config = os.path.join(self.dir, "rtc.toml")
        shutil.copyfile(CONFIG_TEMPLATE, self.config)
        self.redis = None
        self.nodes = []
        self._turn = 0
        base = [binary, "serve", "--config", self.config, "--host", "127.0.0.1", "--port", "0"]
        try:
            if not self.cluster:
                self.nodes.append(_Process(base, LISTEN_RE, "rtc", self.dir))
            else:
                name = "interop-py-%s" % os.urandom(5).hex()
                engine = os.environ.get("INTEROP_ENGINE", "redis")
                if engine == "redis-cluster":
                    self.redis = _RedisCluster(self.dir)
                    url = self.redis.url
                elif engine == "nats":
                    self.redis = self._start_nats()
                    url = "nats://127.0.0.1:%d" % self.redis.port
                else:
                    self.redis = self._start_redis()
                    url = "redis://127.0.0.1:%d" % self.redis.port
                for node_id in ("n1", "n2"):
                    self.nodes.append(_Process(base + ["--redis-url", url, "--cluster", name,
                                                       "--node-id", node_id], LISTEN_RE,
                                               "rtc " + node_id, self.dir))
                self._wait_cluster_ready()
        except BaseException:
            self.stop()
            raise
        self.ports = [int(n.match.group(1)) for n in self.nodes]
        self.port = self.ports[0]
        self.http_port = self.ports[0 if (not self.cluster or CLUSTER_HTTP_NODE == 1) else 1]

    def _start_nats(self):
        """INTEROP_ENGINE=nats: a private `nats-server -js` in place of redis-server."""
        last = None
        for _ in range(3):
            port = _free_port()
            try:
                store = os.path.join(self.dir, "nats-%d" % port)
                r = _Process([os.environ.get("INTEROP_NATS_SERVER", "nats-server"), "-js", "-a", "127.0.0.1",
                              "-p", str(port), "-sd", store, "-l", "/dev/stdout"],
                             re.compile(r"Server is ready"), "nats-server", self.dir)
                r.port = port
                return r
            except RuntimeError as e:  # most likely the port was taken meanwhile: retry
                last = e
        raise last

    def _start_redis(self):
        last = None
        for _ in range(3):
            port = _free_port()
            try:
                r = _Process(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], READY_RE, "redis-server", self.dir)
                r.port = port
                return r
            except RuntimeError as e:  # most likely the port was taken meanwhile: retry
                last = e
        raise last

    def _wait_cluster_ready(self):
        deadline = time.monotonic() + CLUSTER_READY_TIMEOUT
        while True:
            stats = []
            for n in self.nodes:
                try:
                    stats.append(admin_stats(int(n.match.group(1))))
                except (OSError, ValueError) as e:
                    stats.append({"error": str(e)})
            if all(s.get("live_nodes") == len(self.nodes) and (s.get("pubsub") or {}).get("connected") is True
                   and s.get("state") == "serving" for s in stats):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("cluster not ready within %ss: %r" % (CLUSTER_READY_TIMEOUT, [
                    {k: s.get(k) for k in ("node_id", "state", "live_nodes", "pubsub", "error")} for s in stats]))
            time.sleep(0.1)  # the registry is only visible by polling; bounded by the deadline

    def next_port(self):
        """The node the next agent connects to (alternates in cluster mode)."""
        port = self.ports[self._turn % len(self.ports)]
        self._turn += 1
        return port

    def reset_rotation(self):
        self._turn = 0

    def settle(self, check, what="query"):
        """check() raises AssertionError until the answer is right. Single node: run once.
        Cluster: queries come from shared state the other node updates within ~100 ms, so it
        is retried every 50 ms for at most SETTLE_TIMEOUT seconds."""
        if not self.cluster:
            return check()
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            try:
                return check()
            except AssertionError as e:
                if time.monotonic() > deadline:
                    raise AssertionError("%s: still failing after %ss of polling (cluster): %s"
                                         % (what, SETTLE_TIMEOUT, e))
            time.sleep(0.05)

    def stderr_tail(self, n=3000):
        return "\n".join("--- %s ---\n%s" % (p.label, p.stderr_tail(n)) for p in self.nodes)

    def stop(self):
        for p in self.nodes:
            p.kill()
        if self.redis:
            self.redis.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Agent:
    """A real pusher-js client (lib/pusherjs-agent.js) printing what it receives."""

    def __init__(self, server, app=MAIN_APP, subscribe=(), user=None, signin=False, master_key=None):
        opts = {"port": server.next_port(), "app": app, "subscribe": list(subscribe), "signin": signin}
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

    def events_any_order(self, wanted, timeout=TIMEOUT):
        """One event per (channel, name) in wanted, in whatever order they arrive (events on
        different channels have no order: on a Redis Cluster each channel has its own
        shard); returns {(channel, name): message}."""
        got = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(wanted):
            missing = [w for w in wanted if w not in got]
            m = self.expect(lambda m: m.get("type") == "event" and (m.get("channel"), m.get("event")) in missing,
                            " and ".join("%s on %s" % (n, c) for c, n in missing),
                            max(deadline - time.monotonic(), 0.001))
            got[(m["channel"], m["event"])] = m
        return got

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
