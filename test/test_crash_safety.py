"""SIGKILL a writer at random points; every commit it reported must survive, and the file must be sound."""
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

from egomem_ros.store import SqliteStore

WRITER = textwrap.dedent("""
    import sys, numpy as np
    from egomem_ros.store import SqliteStore
    store = SqliteStore(sys.argv[1])
    run = sys.argv[2]
    users = store.list_users() or [store.create_user("Emily")]
    uid = users[0].id
    for i in range(100000):
        with store.transaction():  # one session = several writes, all or nothing
            for j in range(3):
                store.add_fact(uid, "fact", f"{run}-{i}-{j}")
            store.add_key(uid, "voice", "resemblyzer", np.full(256, i, dtype=np.float32))
        print(f"{run}-{i}", flush=True)
""")


def test_sigkill_never_loses_committed_writes(tmp_path):
    db = tmp_path / "memory.db"
    rng = random.Random(1234)
    committed: set[str] = set()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for run in range(22):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), f"r{run}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        # wait until the writer is really writing, then kill it somewhere inside its loop
        first = proc.stdout.readline()
        assert first, proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        committed.update(line for line in [first.strip(), *out.split()] if line)

        store = SqliteStore(db)
        try:
            assert store.integrity_check() == "ok"
            uid = store.list_users()[0].id
            texts = {f.text for f in store.facts(uid)}
            sessions: dict[str, int] = {}
            for t in texts:
                session = t.rsplit("-", 1)[0]
                sessions[session] = sessions.get(session, 0) + 1
            missing = committed - set(sessions)
            assert not missing, f"committed sessions lost after kill #{run}: {sorted(missing)[:5]}"
            torn = {s: n for s, n in sessions.items() if n != 3}
            assert not torn, f"half-written sessions: {torn}"
            assert len(store.user_keys(uid, "voice")) == len(sessions)
        finally:
            store.close()
    assert len(committed) > 22
