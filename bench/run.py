"""Benchmark of the page frame on a real server, side by side in one run.

Builds the demo database, starts gunicorn (sync workers) and, in other processes, a load
generator; for each URL it measures requests per second, p50/p99 latency and bytes, and prints
them with ratios to a bare `return "ok"` route on the same server, so a noisy shared machine
moves all figures together. With --postgres URL the same runs on PostgreSQL too.

    make bench                      # SQLite
    .venv/bin/python bench/run.py --postgres postgresql://postgres@127.0.0.1:5432/bench
"""
import argparse
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

TARGETS = [  # (name, path, extra headers, logged in)
    ("bare ok route", "/bench/ok", {}, False),
    ("login page (anonymous)", "/login", {}, False),
    ("home page (full)", "/?sp=PR002874", {}, True),
    ("supply-point switch (fragment)", "/?sp=PR002875", {"HX-Request": "true", "HX-Target": "frame"}, True),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(database_url, port):
    return dict(os.environ, PORTAL_ENV="development", SECRET_KEY="bench", DATABASE_URL=database_url,
                MAIL_DELIVERY_THREAD="false", PORTAL_BASE_URL=f"http://127.0.0.1:{port}")


def prepare(database_url):
    env = environment(database_url, 0)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    subprocess.run(flask + ["init-db"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(flask + ["demo"], cwd=ROOT, env=env, check=True, capture_output=True)


def start_server(database_url, workers):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "bench.wsgi:app"],
        cwd=ROOT, env=environment(database_url, port), start_new_session=True,
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


def run(label, database_url, args):
    prepare(database_url)
    process, port = start_server(database_url, args.workers)
    try:
        cookie = session_cookie(port)
        rows = []
        for name, path, headers, logged_in in TARGETS:
            headers = dict(headers, Cookie=cookie) if logged_in else headers
            measure(port, path, headers, 1, args.connections)  # warm-up
            rows.append((name, measure(port, path, headers, args.seconds, args.connections)))
    finally:
        os.killpg(process.pid, 15)
        process.wait()
    base = rows[0][1]["rps"]
    print(f"\n{label}: gunicorn {args.workers} sync workers, {args.connections} connections, {args.seconds} s each")
    print(f"{'URL':34} {'req/s':>8} {'/ ok':>6} {'p50 ms':>7} {'p99 ms':>7} {'p99/p50':>7} {'bytes':>7} {'errors':>6}")
    for name, r in rows:
        print(f"{name:34} {r['rps']:8.0f} {r['rps'] / base:6.2f} {r['p50']:7.1f} {r['p99']:7.1f} "
              f"{r['p99'] / r['p50'] if r['p50'] else 0:7.2f} {r['bytes']:7.0f} {r['errors']:6d}")
    full, fragment = rows[2][1], rows[3][1]
    print(f"supply-point switch bytes / full page bytes: {fragment['bytes'] / full['bytes']:.2f}")
    return rows


def options(description):
    """The options every server benchmark takes (a parser, for a benchmark to add its own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=float, default=5, help="of load per URL")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--postgres", help="also run on this PostgreSQL database (it is emptied)")
    return parser


def main():
    args = options(__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sqlite = run("SQLite", "sqlite:///" + os.path.join(folder, "bench.db"), args)
    if args.postgres:
        schema.empty_postgres(args.postgres)
        postgres = run("PostgreSQL (pooled)", args.postgres, args)
        for (name, s), (_, p) in zip(sqlite, postgres):
            print(f"PostgreSQL / SQLite throughput, {name}: {p['rps'] / s['rps']:.2f}")


if __name__ == "__main__":
    main()
