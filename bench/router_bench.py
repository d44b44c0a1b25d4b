#!/usr/bin/env python3
"""`kinfer router` figures in one run: added latency against nginx, placement gain of the prefix
policy, and failover.

  python3 bench/router_bench.py                 # everything (about 25 minutes)
  python3 bench/router_bench.py --quick         # fewer rounds and requests: a smoke run
  python3 bench/router_bench.py --parts latency --rounds 5

1. Added latency. One `kinfer serve` replica (stories260K, one thread); in front of it
   `kinfer router` (prefix policy with the model's tokenizer, and least_request) and nginx
   (Debian's 1.22, taken from the .deb into ~/.cache/kinfer/nginx, proxy_buffering off,
   keep-alive upstream). bench/http_load_bench sends requests at fixed rates (open loop,
   latency from when each request was due) with a small chat body and a 200 KB one; paths are
   alternated round by round. Added latency = percentile through a proxy - same percentile
   direct, median over rounds.
2. Placement. R real `kinfer serve` replicas of the default model (one thread each, KV sized so
   the shared prefixes fit the cluster but not one replica), the router with round_robin,
   least_request and prefix in turn, fresh prompts for each so no cache carries over:
   - shared: G groups with long system prompts, a unique question each (Poisson arrivals);
   - chat: multi-turn sessions, each turn sent when the previous answer came;
   - unique: prompts that share nothing (the prefix policy must not lose here);
   - hot: one prefix for everyone, closed loop: max/mean of the replicas' in-flight counts.
   TTFT p50/p90 (streamed, time to the first token) and throughput (requests / makespan).
3. Failover. Two replicas under closed-loop load (streamed and not): SIGKILL one (count
   failures of requests that had not started streaming; time until the router stops routing to
   it), bring it back, then SIGTERM one (every request must succeed).

Progress goes to stderr, the tables to stdout. The machine is shared: the load average is
printed at the start and the end; read ratios from one run, not absolute times.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from child_process import die_with_parent

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.expanduser(os.environ.get("KINFER_BENCH_CACHE", "~/.cache/kinfer"))
SHARED = os.environ.get("KINFER_SHARED_DIR") or os.path.join(os.path.dirname(REPO), "shared")
STORIES = os.path.join(SHARED, "models/stories260K/stories260K.gguf")
CHATML = os.path.join(SHARED, "chat-templates/llama.cpp/Qwen-Qwen2.5-7B-Instruct.jinja")
LOGS = tempfile.mkdtemp(prefix="kinfer-router-bench-")


def log(msg):
    print(f"[router-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def load_average():
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# ----------------------------------------------------------------------------------- setup

def build(jobs):
    run(["cmake", "--preset", "release"], cwd=REPO, stdout=subprocess.DEVNULL)
    run(["cmake", "--build", "--preset", "release", f"-j{jobs}", "--target", "kinfer",
         "http_load_bench"], cwd=REPO, stdout=subprocess.DEVNULL)
    return (os.path.join(REPO, "build/release/src/kinfer"),
            os.path.join(REPO, "build/release/bench/http_load_bench"))


def ensure_nginx():
    """Debian's nginx binary, unpacked from its .deb into the cache: no service is installed or
    started, nothing outside the cache changes."""
    root = os.path.join(CACHE, "nginx")
    binary = os.path.join(root, "root/usr/sbin/nginx")
    if os.path.exists(binary):
        return binary
    os.makedirs(root, exist_ok=True)
    run(["apt-get", "download", "nginx"], cwd=root, stderr=subprocess.DEVNULL)
    deb = [f for f in os.listdir(root) if f.startswith("nginx_") and f.endswith(".deb")][0]
    run(["dpkg-deb", "-x", os.path.join(root, deb), os.path.join(root, "root")])
    return binary


def default_model():
    path = os.environ.get("KINFER_DEFAULT_MODEL")
    if path:
        return path
    return subprocess.run([os.path.join(REPO, "scripts/fetch_default_model.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()


class Proc:
    def __init__(self, name, cmd):
        self.name = name
        self.log = open(os.path.join(LOGS, f"{name}.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=die_with_parent)

    def wait_http(self, port, path="/ready", timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                    if b" 200 " in s.recv(64):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s; see {self.log.name}")

    def signal(self, sig):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


class Replica(Proc):
    def __init__(self, kinfer, model, name, *args, port=None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [kinfer, "serve", "--model", model, "--host", "127.0.0.1", "--port",
                     str(self.port), "--threads", "1", "--no-access-log", "--drain-delay", "1",
                     *args]
        super().__init__(name, self.args)
        self.wait_http(self.port)

    def restart(self):
        self.stop()
        super().__init__(self.name, self.args)
        self.wait_http(self.port)


class Router(Proc):
    def __init__(self, kinfer, backends, policy, name, *args):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(name, [kinfer, "router", "--backends", ",".join(backends), "--policy",
                                policy, "--host", "127.0.0.1", "--port", str(self.port),
                                "--no-access-log", "--drain-delay", "0", *args])
        self.wait_http(self.port)
        deadline = time.time() + 60
        while self.routable() < len(backends):
            if time.time() > deadline:
                raise RuntimeError(f"{name}: replicas not routable; see {self.log.name}")
            time.sleep(0.05)

    def metrics(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        out = {}
        for line in data.split(b"\r\n\r\n", 1)[1].decode().splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def routable(self):
        try:
            return int(self.metrics().get('kinfer_router_backends{state="routable"}', 0))
        except OSError:
            return 0


class Nginx(Proc):
    def __init__(self, binary, backend_port, name="nginx"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        prefix = os.path.join(LOGS, name)
        os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
        conf = os.path.join(prefix, "nginx.conf")
        # As a reverse proxy for an LLM server is set up: streaming (no response buffering),
        # keep-alive to the upstream, bodies up to the router's cap, two workers like the
        # router's two I/O threads.
        with open(conf, "w") as f:
            f.write(f"""daemon off;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  client_max_body_size 8m;
  client_body_buffer_size 8m;
  upstream replicas {{ server 127.0.0.1:{backend_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }}
  }}
}}
""")
        super().__init__(name, [binary, "-p", prefix, "-c", conf])
        self.wait_http(self.port, "/health")


# --------------------------------------------------------------------------- 1. latency

VOCAB = ("time river stone light paper garden window music silver forest market winter "
         "engine letter summer mountain island animal doctor kitchen planet history "
         "question morning evening village library station teacher picture student").split()



def histogram_quantile(metrics, name, q):
    """A quantile of a Prometheus histogram from its cumulative buckets (linear inside one)."""
    buckets = []
    for k, v in metrics.items():
        if k.startswith(name + "_bucket{") and 'le="' in k:
            le = k.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), v))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    target, prev_le, prev_n = q * buckets[-1][1], 0.0, 0.0
    for le, n in buckets:
        if n >= target:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (target - prev_n) / max(n - prev_n, 1e-9)
        prev_le, prev_n = le, n
    return prev_le


def latency(args, kinfer, loader, nginx_bin):
    model = default_model()
    print(f"\n## Added latency: direct vs `kinfer router` vs nginx, one replica ({os.path.basename(model)}, 1 thread)\n")
    rep = Replica(kinfer, model, "latency-replica", "--served-model-name", "m",
                  "--kv-cache-memory", "128MiB", "--max-model-len", "2048")
    prefix = Router(kinfer, [rep.url], "prefix", "latency-router-prefix", "--model", model)
    least = Router(kinfer, [rep.url], "least_request", "latency-router-lr")
    ngx = Nginx(nginx_bin, rep.port)
    paths = [("direct", rep.url), ("router prefix", prefix.url), ("router least_request", least.url),
             ("nginx", ngx.url)]
    small = {"model": "m", "max_tokens": 1,
             "messages": [{"role": "user", "content": "Tell me a story about a cat."}]}
    text = ""
    rng = random.Random(1)
    while len(text) < 200_000:
        text += rng.choice(VOCAB) + " "
    # 200 KB: more than the replica's context, so it renders and tokenizes it and answers 400
    # without running the model; the proxies carry every byte and the router reads it.
    large = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": text}]}
    workloads = []  # (name, path, body file, bytes, rate, seconds)
    for name, body, rate, secs in (("small chat", small, args.small_rate, args.seconds),
                                   ("200 KB chat", large, args.large_rate, args.seconds)):
        path = os.path.join(LOGS, f"body-{name.replace(' ', '-')}.json")
        with open(path, "w") as f:
            json.dump(body, f)
        workloads.append((name, "/v1/chat/completions", path, os.path.getsize(path), rate, secs))
    # The replica's cheapest answer: the proxy's own cost shows, not the replica's jitter.
    workloads.insert(0, ("GET /v1/models", "/v1/models", None, 0, args.models_rate, args.seconds / 2))
    results = {}  # (workload, path) -> [run dicts]
    for rnd in range(args.rounds):
        for name, path, body, _, rate, secs in workloads:
            # Interleaved: request i goes to path i mod 4, so every path sees the same machine
            # load at the same moments; the order rotates between rounds.
            order = paths[rnd % len(paths):] + paths[:rnd % len(paths)]
            cmd = [loader, "--rate", str(rate * len(paths)), "--seconds", str(secs),
                   "--connections", "16", "--warmup", "1"]
            for _, url in order:
                cmd += ["--url", url + path]
            if body:
                cmd += ["--body", body]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            for (pname, _), line in zip(order, out.strip().splitlines()):
                r = json.loads(line)
                results.setdefault((name, pname), []).append(r)
                log(f"latency round {rnd + 1}/{args.rounds} {name} {rate}/s {pname}: "
                    f"p50 {r['p50_us'] / 1000:.2f} ms p99 {r['p99_us'] / 1000:.2f} ms "
                    f"errors {r['errors']}")
    print(f"Open loop (latency from when each request was due); the four paths interleaved request "
          f"by request (rate is per path), {args.rounds} rounds; medians over rounds. Added = "
          "through the proxy - direct, same percentile.\n")
    print("| request | bytes | rate/s | path | samples | p50 ms | p99 ms | added p50 ms | added p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    summary = {}
    for name, _, _, size, rate, _ in workloads:
        med = {}
        for pname, _ in paths:
            runs = results[(name, pname)]
            med[pname] = (statistics.median(r["p50_us"] for r in runs) / 1000,
                          statistics.median(r["p99_us"] for r in runs) / 1000,
                          sum(r["errors"] for r in runs),
                          sum(r["ok"] + r["non_2xx"] for r in runs))
        for pname, _ in paths:
            p50, p99, err, n = med[pname]
            if pname == "direct":
                print(f"| {name} | {size} | {rate} | {pname} | {n} | {p50:.3f} | {p99:.3f} | | | {err} |")
            else:
                a50, a99 = p50 - med["direct"][0], p99 - med["direct"][1]
                summary[(name, pname)] = (a50, a99)
                print(f"| {name} | {size} | {rate} | {pname} | {n} | {p50:.3f} | {p99:.3f} | "
                      f"{a50:+.3f} | {a99:+.3f} | {err} |")
    print()
    for name, *_ in workloads:
        n = summary[(name, "nginx")]
        for pname in ("router prefix", "router least_request"):
            r = summary[(name, pname)]
            print(f"- {name}, {pname}: added p50 {r[0]:+.3f} ms (nginx {n[0]:+.3f}), added p99 "
                  f"{r[1]:+.3f} ms (nginx {n[1]:+.3f})")
    # The router's own account: arrival to the first attempt leaving (parse, tokenize, pick).
    for pname, router in (("router prefix", prefix), ("router least_request", least)):
        m = router.metrics()
        q50 = histogram_quantile(m, "kinfer_router_added_latency_seconds", 0.5) * 1000
        q99 = histogram_quantile(m, "kinfer_router_added_latency_seconds", 0.99) * 1000
        print(f"- {pname}, its own kinfer_router_added_latency_seconds over every request above: "
              f"p50 {q50:.3f} ms, p99 {q99:.3f} ms")
    for p in (ngx, least, prefix, rep):
        p.stop()


# ------------------------------------------------------------------------- 2. placement

def words(rng, n):
    return " ".join(rng.choice(VOCAB) for _ in range(n))


async def chat_stream(port, messages, max_tokens):
    """One streamed chat request: (ttft seconds, assistant text)."""
    body = json.dumps({"model": "m", "messages": messages, "max_tokens": max_tokens,
                       "temperature": 0, "stream": True}).encode()
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode(errors="replace")
    if head.split(" ", 2)[1] != "200":
        raise RuntimeError(head + (await reader.read(500)).decode(errors="replace"))
    ttft, text, buf = None, "", b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            break
        buf += await reader.readexactly(size)
        await reader.readexactly(2)
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            payload = event[5:].strip()
            if payload == b"[DONE]":
                continue
            j = json.loads(payload)
            if j.get("error"):
                raise RuntimeError(j["error"])
            for c in j.get("choices", []):
                delta = c.get("delta", {}).get("content")
                if delta:
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    text += delta
    writer.close()
    return (ttft if ttft is not None else time.perf_counter() - t0), text


async def open_loop(port, requests, rate, seed):
    """Poisson arrivals of (messages, max_tokens); returns (ttfts, makespan)."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    tasks, at = [], 0.0
    for messages, max_tokens in requests:
        at += rng.expovariate(rate)
        delay = t0 + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(chat_stream(port, messages, max_tokens)))
    res = await asyncio.gather(*tasks)
    return [r[0] for r in res], time.perf_counter() - t0


def shared_requests(rng, groups, prefix_words, n):
    systems = [f"You are assistant number {g}. " + words(rng, prefix_words) for g in range(groups)]
    out = []
    for i in range(n):
        g = rng.randrange(groups)
        out.append(([{"role": "system", "content": systems[g]},
                     {"role": "user", "content": f"Question {i}: " + words(rng, 12) + "?"}], 8))
    return out


def unique_requests(rng, prefix_words, n):
    return [([{"role": "user", "content": f"Request {i}: " + words(rng, prefix_words)}], 8)
            for i in range(n)]


async def chat_sessions(port, rng, sessions, turns, system_words):
    ttfts = []
    t0 = time.perf_counter()

    async def session(s):
        messages = [{"role": "system", "content": f"Session {s}. " + words(rng, system_words)}]
        for t in range(turns):
            messages.append({"role": "user", "content": f"Turn {t}: " + words(rng, 40)})
            ttft, text = await chat_stream(port, messages, 24)
            if t > 0:
                ttfts.append(ttft)
            messages.append({"role": "assistant", "content": text})

    await asyncio.gather(*(session(s) for s in range(sessions)))
    return ttfts, time.perf_counter() - t0


async def hot_prefix(router, rng, concurrency, n, prefix_words):
    system = "You are the one shared assistant. " + words(rng, prefix_words)
    todo = list(range(n))
    samples = []
    done = False

    def sample():
        while not done:
            try:
                m = router.metrics()
            except OSError:
                continue
            samples.append([v for k, v in m.items() if k.startswith("kinfer_router_backend_inflight{")])
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    ttfts = []

    async def worker():
        while todo:
            i = todo.pop()
            ttft, _ = await chat_stream(router.port, [{"role": "system", "content": system},
                                                      {"role": "user", "content": f"Q{i}: " + words(rng, 10)}], 8)
            ttfts.append(ttft)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    done = True
    sampler.join()
    samples = [s for s in samples if sum(s) > 0]
    per = [statistics.mean(s[i] for s in samples) for i in range(len(samples[0]))]
    return ttfts, wall, max(per) / statistics.mean(per), per


def placement(args, kinfer):
    model = default_model()
    R = args.replicas
    # SmolLM2-135M: 30 layers x 3 KV heads x 64 x 2 (K, V) x 2 bytes = 22.5 KiB a token.
    kv_per_token = 30 * 3 * 64 * 2 * 2
    prefix_tokens = int(args.prefix_words * 1.4) + 20  # about 1.4 tokens a word, plus the template
    groups = args.groups or 2 * R
    # Each replica holds about 2.5 prefixes: all groups fit the cluster, not one replica.
    kv_bytes = int(2.5 * prefix_tokens * kv_per_token) + 64 * kv_per_token * 8
    print(f"\n## Placement: {R} replicas of {os.path.basename(model)} (1 thread each, KV "
          f"{kv_bytes >> 20} MiB = about {kv_bytes // kv_per_token} tokens each), {groups} groups "
          f"of about {prefix_tokens}-token system prompts\n")
    max_len = min(2048, (kv_bytes // kv_per_token) // 16 * 16)
    reps = [Replica(kinfer, model, f"replica-{i}", "--served-model-name", "m", "--kv-cache-memory",
                    str(kv_bytes), "--max-model-len", str(max_len), "--max-num-seqs", "8")
            for i in range(R)]
    # Calibrate: one cold prefill of a group prompt on an idle replica.
    rng = random.Random(99)
    cold = []
    for i in range(2):
        t, _ = asyncio.run(chat_stream(reps[0].port, shared_requests(rng, 1, args.prefix_words, 1)[0][0], 1))
        cold.append(t)
    prefill = min(cold)
    rate = args.load * R / prefill
    log(f"cold prefill of one group prompt: {prefill * 1000:.0f} ms; shared-prefix arrival rate "
        f"{rate:.2f}/s ({args.load:.0%} of the cluster's cold capacity)")
    policies = ["round_robin", "least_request", "prefix"]
    rows = {}
    for rnd, policy in enumerate(policies):
        router = Router(kinfer, [r.url for r in reps], policy, f"router-{policy}", "--model", model,
                        "--scrape-interval", "0.1")
        seed = 1000 * (rnd + 1)
        rng = random.Random(seed)
        log(f"{policy}: shared prefixes, {args.requests} requests")
        shared, wall = asyncio.run(open_loop(router.port, shared_requests(rng, groups, args.prefix_words,
                                                                          args.requests), rate, seed))
        rows[("shared", policy)] = (shared, args.requests / wall)
        log(f"{policy}: multi-turn chat, {args.sessions} sessions x {args.turns} turns")
        chat, wall = asyncio.run(chat_sessions(router.port, rng, args.sessions, args.turns,
                                               args.prefix_words // 2))
        rows[("chat", policy)] = (chat, args.sessions * args.turns / wall)
        log(f"{policy}: unique prompts, {args.requests} requests")
        uniq, wall = asyncio.run(open_loop(router.port, unique_requests(rng, args.unique_words,
                                                                       args.requests),
                                           args.unique_load * R / prefill, seed + 1))
        rows[("unique", policy)] = (uniq, args.requests / wall)
        log(f"{policy}: one hot prefix, {3 * R} concurrent")
        hot, wall, ratio, per = asyncio.run(hot_prefix(router, rng, 3 * R, args.requests,
                                                       args.prefix_words))
        rows[("hot", policy)] = (hot, args.requests / wall, ratio, per)
        router.stop()
    print("| workload | policy | TTFT p50 s | TTFT p90 s | throughput req/s | p90 vs round_robin | throughput vs round_robin |")
    print("|---|---|---|---|---|---|---|")
    for w in ("shared", "chat", "unique", "hot"):
        base = rows[(w, "round_robin")]
        for policy in policies:
            r = rows[(w, policy)]
            print(f"| {w} | {policy} | {pct(r[0], 50):.3f} | {pct(r[0], 90):.3f} | {r[1]:.2f} | "
                  f"{pct(r[0], 90) / pct(base[0], 90):.2f}x | {r[1] / base[1]:.2f}x |")
    print()
    for policy in policies:
        r = rows[("hot", policy)]
        print(f"- one hot prefix, {policy}: max/mean in-flight over replicas {r[2]:.2f} "
              f"(mean in-flight per replica {', '.join(f'{x:.2f}' for x in r[3])})")
    s = rows[("shared", "prefix")]
    print(f"- shared prefixes: prefix TTFT p90 = {pct(s[0], 90) / pct(rows[('shared', 'round_robin')][0], 90):.2f}x "
          f"round robin's (goal <= 0.33x)")
    u = rows[("unique", "prefix")]
    ub = rows[("unique", "round_robin")]
    print(f"- no sharing: prefix throughput {u[1] / ub[1]:.2f}x and TTFT p50 "
          f"{pct(u[0], 50) / pct(ub[0], 50):.2f}x round robin's (goal: no loss beyond 5%)")
    for r in reps:
        r.stop()


# -------------------------------------------------------------------------- 3. failover

def failover(args, kinfer):
    model = default_model()
    print(f"\n## Failover: 2 replicas of {os.path.basename(model)}, closed-loop load, streamed and not\n")
    reps = [Replica(kinfer, model, f"failover-{i}", "--served-model-name", "m", "--kv-cache-memory",
                    "256MiB", "--max-model-len", "1024") for i in range(2)]
    router = Router(kinfer, [r.url for r in reps], "prefix", "failover-router", "--model", model,
                    "--probe-interval", "0.25")

    def one(i, stats):
        stream = i % 2 == 0
        body = json.dumps({"model": "m", "prompt": f"Request {i}: tell a story.", "max_tokens": 48,
                           "ignore_eos": True, "stream": stream}).encode()
        started = False
        try:
            with socket.create_connection(("127.0.0.1", router.port), timeout=60) as s:
                s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Connection: close\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
                    started = started or b"\r\n\r\n" in data
            head, _, rest = data.partition(b"\r\n\r\n")
            ok = b" 200 " in head[:16] and (not stream or (b"[DONE]" in rest and b'"error"' not in rest))
            if ok:
                stats["ok"] += 1
            elif started and stream and b" 200 " in head[:16]:
                stats["cut_streams"] += 1  # failed after the first byte: an SSE error event
            else:
                stats["failed_before_start"] += 1
                stats["examples"].append(head[:60] + rest[:200])
        except OSError as e:
            stats["failed_before_start" if not started else "cut_streams"] += 1
            stats["examples"].append(repr(e).encode())

    def load(seconds, event_at, event):
        stats = {"ok": 0, "failed_before_start": 0, "cut_streams": 0, "examples": []}
        stop = time.time() + seconds
        counter = iter(range(10 ** 9))
        lock = threading.Lock()

        def worker():
            while time.time() < stop:
                with lock:
                    i = next(counter)
                one(i, stats)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        time.sleep(event_at)
        result = event()
        for t in threads:
            t.join()
        return stats, result

    victim = reps[0]
    key = f'kinfer_router_backend_healthy{{backend="127.0.0.1:{victim.port}"}}'

    def kill():
        t0 = time.perf_counter()
        victim.signal(signal.SIGKILL)
        while router.metrics().get(key, 1) != 0:
            time.sleep(0.01)
        return time.perf_counter() - t0

    log("SIGKILL under load")
    stats, ejected = load(args.failover_seconds, args.failover_seconds / 3, kill)
    retries = sum(v for k, v in router.metrics().items() if k.startswith("kinfer_router_retries_total"))
    print("| event | requests ok | failed before streaming | streams cut mid-way | router stops routing to it after | retries |")
    print("|---|---|---|---|---|---|")
    print(f"| SIGKILL | {stats['ok']} | {stats['failed_before_start']} | {stats['cut_streams']} | "
          f"{ejected * 1000:.0f} ms | {retries:.0f} |")
    for e in stats["examples"][:3]:
        log(f"failure: {e!r}")
    victim.restart()
    while router.routable() < 2:
        time.sleep(0.05)

    def term():
        t0 = time.perf_counter()
        victim.signal(signal.SIGTERM)
        while router.metrics().get(key, 1) != 0:
            time.sleep(0.01)
        return time.perf_counter() - t0

    log("SIGTERM under load")
    before = retries
    stats, unready = load(args.failover_seconds, args.failover_seconds / 3, term)
    victim.proc.wait(60)
    retries = sum(v for k, v in router.metrics().items() if k.startswith("kinfer_router_retries_total"))
    print(f"| SIGTERM | {stats['ok']} | {stats['failed_before_start']} | {stats['cut_streams']} | "
          f"{unready * 1000:.0f} ms | {retries - before:.0f} |")
    print(f"\nSIGTERM: the replica exited {victim.proc.returncode} after draining. Goals: SIGKILL: no "
          f"failure before streaming, ejection within 1 s; SIGTERM: no failure at all.")
    for e in stats["examples"][:3]:
        log(f"failure: {e!r}")
    router.stop()
    for r in reps:
        r.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="latency,placement,failover")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--models-rate", type=float, default=100, help="per path")
    ap.add_argument("--small-rate", type=float, default=2, help="per path")
    ap.add_argument("--large-rate", type=float, default=1, help="per path")
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--groups", type=int, default=0, help="default: twice the replicas")
    ap.add_argument("--prefix-words", type=int, default=500)
    ap.add_argument("--unique-words", type=int, default=500)
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--load", type=float, default=0.7,
                    help="shared-prefix arrivals as a fraction of the cluster's cold capacity")
    ap.add_argument("--unique-load", type=float, default=0.5)
    ap.add_argument("--sessions", type=int, default=6)
    ap.add_argument("--turns", type=int, default=4)
    ap.add_argument("--failover-seconds", type=float, default=15)
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.requests, args.failover_seconds = 1, 8, 24, 9
        args.sessions, args.turns = 3, 3
    log(f"logs in {LOGS}")
    print(f"# kinfer router benchmarks, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"Machine at start: {load_average()} (shared with other builds: ratios only).")
    kinfer, loader = build(args.jobs)
    parts = args.parts.split(",")
    if "latency" in parts:
        latency(args, kinfer, loader, ensure_nginx())
    if "placement" in parts:
        placement(args, kinfer)
    if "failover" in parts:
        failover(args, kinfer)
    print(f"\nMachine at end: {load_average()}.")


if __name__ == "__main__":
    main()
