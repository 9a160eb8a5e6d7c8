"""Benchmark of the page frame on a real server, side by side in one run.

Builds the demo database, starts gunicorn (sync workers) and, in other processes, a load
generator; for each URL it measures requests per second, p50/p99 latency and bytes, and prints
them with ratios to a bare `return "ok"` route on the same server, so a noisy shared machine
moves all figures together. With --postgres URL a second server runs on PostgreSQL, and the
two take turns on each URL, round after round. With --baseline REV one more server runs the
code of that commit (a git worktree) on the same SQLite database, in the same rounds: a change's
cost, measured side by side.

    make bench                      # SQLite
    .venv/bin/python bench/run.py --postgres postgresql://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/run.py --baseline 7d80ef3
"""
import argparse
import contextlib
import http.client
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import demo  # noqa: E402
import schema  # noqa: E402

TARGETS = [  # (name, path, extra headers, logged in, connections; None: --connections)
    ("bare ok route", "/bench/ok", {}, False, None),
    ("login page (anonymous)", "/login", {}, False, None),
    ("home page (full)", "/?sp=PR002874", {}, True, None),
    ("supply-point switch (fragment)", "/?sp=PR002875", {"HX-Request": "true", "HX-Target": "frame"}, True, None),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(database_url, port, **settings):
    return dict(os.environ, PORTAL_ENV="development", SECRET_KEY="bench", DATABASE_URL=database_url,
                MAIL_DELIVERY_THREAD="false", PORTAL_BASE_URL=f"http://127.0.0.1:{port}", **settings)


def prepare(database_url):
    env = environment(database_url, 0)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    subprocess.run(flask + ["init-db"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(flask + ["demo"], cwd=ROOT, env=env, check=True, capture_output=True)


def start_server(database_url, workers, root=ROOT, **settings):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "bench.wsgi:app"],
        cwd=root, env=environment(database_url, port, **settings), start_new_session=True,
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/ok", timeout=2)
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("gunicorn did not start")


def session_cookie(port):
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"http://127.0.0.1:{port}/login").read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"user": demo.DEMO_CUSTOMER, "password": demo.DEMO_PASSWORD, "csrf_token": token})
    opener.open(f"http://127.0.0.1:{port}/login", data=data.encode())
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def load_worker(port, path, headers, seconds, connections, results):
    """One load process: `connections` sequential clients in threads, for `seconds`."""
    import threading

    latencies, sizes, errors = [], [], 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        nonlocal errors
        while time.monotonic() < deadline:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            started = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                body = response.read()
                ok = response.status == 200
            except OSError:
                ok, body = False, b""
            elapsed = time.perf_counter() - started
            connection.close()
            with lock:
                if ok:
                    latencies.append(elapsed)
                    sizes.append(len(body))
                else:
                    errors += 1

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((latencies, sizes, errors))


def measure(port, path, headers, seconds, connections, processes=2):
    results = multiprocessing.Queue()
    per_process = max(1, connections // processes)
    workers = [multiprocessing.Process(target=load_worker, args=(port, path, headers, seconds, per_process, results))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    latencies, sizes, errors = [], [], 0
    for _ in workers:
        lat, size, err = results.get()
        latencies += lat
        sizes += size
        errors += err
    for worker in workers:
        worker.join()
    latencies.sort()
    return {
        "rps": len(latencies) / seconds,
        "p50": statistics.median(latencies) * 1000 if latencies else 0,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0,
        "bytes": statistics.median(sizes) if sizes else 0,
        "errors": errors,
    }


@contextlib.contextmanager
def serving(workers):
    """Yields serve(label, database_url, **settings), which starts a gunicorn on that database
    (settings: more environment variables) and logs in, and the servers so far (label -> (port,
    session cookie)); all are stopped at the end."""
    processes, servers = [], {}

    def serve(label, database_url, root=ROOT, **settings):
        process, port = start_server(database_url, workers, root, **settings)
        processes.append(process)
        servers[label] = (port, session_cookie(port))

    try:
        yield serve, servers
    finally:
        for process in processes:
            os.killpg(process.pid, 15)
            process.wait()


def interleaved(servers, targets, args):
    """Every target on every server (label -> (port, session cookie)), in `args.rounds` rounds of
    `args.seconds` each, the servers taking turns on each target: this VM's speed drifts by a
    quarter within a minute, so figures compared across servers are measured seconds apart,
    not one server minutes after the other. Answers, per server and target, one figure a round."""
    rounds = {label: {name: [] for name, *_ in targets} for label in servers}

    def each_target_on_each_server(seconds, keep):
        for name, path, headers, logged_in, connections in targets:
            for label, (port, cookie) in servers.items():
                figures = measure(port, path, dict(headers, Cookie=cookie) if logged_in else headers,
                                  seconds, connections or args.connections)
                if keep:
                    rounds[label][name].append(figures)

    each_target_on_each_server(1, keep=False)  # warm-up
    for _ in range(args.rounds):
        each_target_on_each_server(args.seconds, keep=True)
    return rounds


def pooled(figures):
    """One target's rounds as one figure: mean throughput, median latencies and bytes."""
    return {"rps": statistics.mean(f["rps"] for f in figures),
            "p50": statistics.median(f["p50"] for f in figures), "p99": statistics.median(f["p99"] for f in figures),
            "tail": statistics.median(f["p99"] / f["p50"] for f in figures if f["p50"]),
            "bytes": statistics.median(f["bytes"] for f in figures), "errors": sum(f["errors"] for f in figures)}


def by_round(over, under):
    """A ratio of two servers' throughput round by round, lowest to highest: how far the
    machine moved it."""
    each = sorted(a["rps"] / b["rps"] for a, b in zip(over, under))
    return f"{each[0]:.2f}-{each[-1]:.2f}"


def options(description):
    """The options every server benchmark takes (a parser, for a benchmark to add its own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=float, default=2, help="of load per URL and round")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of --seconds per URL, the servers in turn")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--postgres", help="also run on this PostgreSQL database (it is emptied)")
    parser.add_argument("--baseline", metavar="REV", help="also run this commit's code on the same SQLite database")
    return parser


@contextlib.contextmanager
def checked_out(rev, folder):
    """The code of `rev` in a git worktree under `folder`, its translations compiled."""
    tree = os.path.join(folder, "baseline")
    subprocess.run(["git", "worktree", "add", "--detach", tree, rev], cwd=ROOT, check=True, capture_output=True)
    try:
        subprocess.run([sys.executable, "-m", "babel.messages.frontend", "compile", "-d", "translations"],
                       cwd=tree, check=True, capture_output=True)
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT, check=False, capture_output=True)


def main():
    args = options(__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        baseline_code = stack.enter_context(checked_out(args.baseline, folder)) if args.baseline else None
        serve, servers = stack.enter_context(serving(args.workers))  # stopped before the worktree goes
        databases = [("SQLite", "sqlite:///" + os.path.join(folder, "bench.db"))]
        if args.postgres:
            schema.empty_postgres(args.postgres)
            databases.append(("PostgreSQL (pooled)", args.postgres))
        for label, database_url in databases:
            prepare(database_url)
            serve(label, database_url)
        if args.baseline:
            baseline = f"SQLite, the code of {args.baseline}"
            serve(baseline, databases[0][1], root=baseline_code)
            databases.append((baseline, databases[0][1]))
        rounds = interleaved(servers, TARGETS, args)
    print(f"\ngunicorn {args.workers} sync workers, {args.connections} connections; {args.rounds} rounds of "
          f"{args.seconds:g} s per URL, the servers in turn")
    for label, _ in databases:
        figures = {name: pooled(rounds[label][name]) for name, *_ in TARGETS}
        base = figures["bare ok route"]["rps"]
        print(f"\n{label}")
        print(f"{'URL':34} {'req/s':>8} {'/ ok':>6} {'p50 ms':>7} {'p99 ms':>7} {'p99/p50':>7} {'bytes':>7} {'errors':>6}")
        for name, f in figures.items():
            print(f"{name:34} {f['rps']:8.0f} {f['rps'] / base:6.2f} {f['p50']:7.1f} {f['p99']:7.1f} "
                  f"{f['tail']:7.2f} {f['bytes']:7.0f} {f['errors']:6d}")
        switch, full = figures["supply-point switch (fragment)"], figures["home page (full)"]
        print(f"supply-point switch bytes / full page bytes: {switch['bytes'] / full['bytes']:.2f}")
    if args.baseline:
        print()
        for name, *_ in TARGETS:
            now, before = rounds["SQLite"][name], rounds[baseline][name]
            print(f"this code / {args.baseline}, {name}: {pooled(now)['rps'] / pooled(before)['rps']:.2f} "
                  f"(by round {by_round(now, before)})")
    if args.postgres:
        print()
        for name, *_ in TARGETS:
            sqlite, postgres = rounds["SQLite"][name], rounds["PostgreSQL (pooled)"][name]
            print(f"PostgreSQL / SQLite throughput, {name}: {pooled(postgres)['rps'] / pooled(sqlite)['rps']:.2f} "
                  f"(by round {by_round(postgres, sqlite)})")


if __name__ == "__main__":
    main()
