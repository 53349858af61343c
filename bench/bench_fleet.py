"""A fleet on one PostgreSQL against one SQLite per robot: consolidation throughput and Level-1 read latency.

Run: .venv/bin/python bench/bench_fleet.py [--robots 2 4 8] [--sessions 30] [--people 8]
Each robot is its own process. It consolidates `--sessions` dialog sessions (rule extractor and update
agent, a face key per new person) about `--people` residents whom every robot meets, and reads the
Level-1 profile of the session's person after each one. With PostgreSQL all robots share one server
(scripts/pg_throwaway.sh starts one unless EGOMEM_PG_URL is set) and so meet each other's residents;
with SQLite each robot has its own file. Printed side by side: sessions consolidated per second over
the whole fleet, and the p95 of a Level-1 read.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

ROBOT = r"""
import json, sys, time
import numpy as np
from egomem_ros.memchunk import ApproxTokenCounter, render_user_profile
from egomem_ros.memory.consolidate import Consolidator, SessionInput
from egomem_ros.memory.extraction import RuleExtractor, Turn
from egomem_ros.memory.update_agent import RuleUpdateAgent
from egomem_ros.store import open_store

db, robot, sessions, people, start_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
rng = np.random.default_rng(robot)
store = open_store(db)
keys = []
def sync():
    keys[:] = [(k.user_id, k.vector) for k in store.keys("face", "dlib")]
def identify(s):
    e = s.face_embeddings[0]
    d = [(float(np.linalg.norm(v - e)), u) for u, v in keys]
    return min(d)[1] if d and min(d)[0] < 0.6 else None
sync()
c = Consolidator(store, RuleExtractor(), RuleUpdateAgent(), identify, face_model="dlib", refresh=sync)
counter = ApproxTokenCounter()
while time.time() < start_at:
    time.sleep(0.002)
t0, reads = time.time(), []
for k in range(sessions):
    p = int(rng.integers(people))
    face = np.zeros(128, np.float32); face[p * 4:(p + 1) * 4] = 1.0
    face += rng.normal(0, 0.02, 128).astype(np.float32)
    said = f"My name is Resident{p}. I work at Place{robot}x{k}. I love hobby{robot}x{k}. My friend Visitor{k} came."
    out = c.process(SessionInput(f"r{robot}-{k}", 10.0 * k, 10.0 * k + 5, [Turn(speaker="user", text=said)],
                                 face_embeddings=[face]))
    r0 = time.perf_counter()
    render_user_profile(store, out.user_id, 512, counter)
    reads.append(time.perf_counter() - r0)
print(json.dumps({"t0": t0, "t1": time.time(), "sessions": sessions, "reads": reads}))
"""


def run_fleet(dbs: list[str], sessions: int, people: int) -> tuple[float, float]:
    start_at = time.time() + 2.0 + 0.3 * len(dbs)
    procs = [subprocess.Popen([sys.executable, "-c", ROBOT, db, str(r), str(sessions), str(people), str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r, db in enumerate(dbs)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=1800)
        if p.returncode:
            raise SystemExit(f"robot failed: {err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    reads = np.concatenate([r["reads"] for r in results]) * 1000
    return sum(r["sessions"] for r in results) / wall, float(np.percentile(reads, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--robots", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--sessions", type=int, default=30, help="sessions per robot")
    ap.add_argument("--people", type=int, default=8)
    args = ap.parse_args()
    repo = Path(__file__).resolve().parent.parent
    url, pg_dir = os.environ.get("EGOMEM_PG_URL", ""), ""
    if not url:
        env = subprocess.run(["bash", str(repo / "scripts/pg_throwaway.sh"), "start"], capture_output=True, text=True,
                             check=True).stdout
        if "EGOMEM_PG_URL=" not in env:
            raise SystemExit("no PostgreSQL server here (Debian: apt-get install postgresql-15)")
        url = env.split("EGOMEM_PG_URL='")[1].split("'")[0]
        pg_dir = env.split("EGOMEM_PG_DIR='")[1].split("'")[0]
    import psycopg

    rows = []
    try:
        for n in args.robots:
            name = f"fleet_{n}_{os.getpid()}"
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE {name}")
            shared = urlunsplit(urlsplit(url)._replace(path="/" + name))
            pg = run_fleet([shared] * n, args.sessions, args.people)
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
            with tempfile.TemporaryDirectory() as tmp:
                lite = run_fleet([str(Path(tmp) / f"robot{r}.db") for r in range(n)], args.sessions, args.people)
            rows.append((n, pg, lite))
    finally:
        if pg_dir:
            subprocess.run(["bash", str(repo / "scripts/pg_throwaway.sh"), "stop", pg_dir], check=False)
    print(f"# fleet: {args.sessions} sessions per robot, {args.people} residents, {os.cpu_count()} cores")
    print("| robots | PostgreSQL (shared) sessions/s | SQLite (one per robot) sessions/s | ratio "
          "| PostgreSQL L1 read p95 ms | SQLite L1 read p95 ms |")
    print("|---|---|---|---|---|---|")
    for n, (pg_rate, pg_p95), (lite_rate, lite_p95) in rows:
        print(f"| {n} | {pg_rate:.1f} | {lite_rate:.1f} | {pg_rate / lite_rate:.2f} | {pg_p95:.2f} | {lite_p95:.2f} |")


if __name__ == "__main__":
    main()
