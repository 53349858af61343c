"""One robot of a fleet test: consolidates its own sessions of three people into a shared PostgreSQL.

Run as `python fleet_worker.py URL ROBOT START_AT`; every robot starts writing at START_AT (epoch s).
Identity is a local index of the store's face keys, refreshed from the store as the real poller's is."""
import sys
import time

import numpy as np

from egomem_ros.memory.consolidate import Consolidator, SessionInput
from egomem_ros.memory.extraction import RuleExtractor, Turn
from egomem_ros.memory.update_agent import RuleUpdateAgent
from egomem_ros.store import open_store

PEOPLE = ["Amara", "Bodhi", "Celeste"]
SESSIONS_PER_PERSON = 3


def person_face(p: int, rng) -> np.ndarray:
    centre = np.zeros(128, np.float32)
    centre[p * 10:(p + 1) * 10] = 1.0
    return centre + rng.normal(0, 0.02, 128).astype(np.float32)


class LocalIndex:
    def __init__(self, store):
        self.store = store
        self.sync()

    def sync(self) -> None:
        self.keys = [(k.user_id, k.vector) for k in self.store.keys("face", "dlib")]

    def identify(self, s: SessionInput) -> str | None:
        e = s.face_embeddings[0]
        best = min(self.keys, key=lambda k: float(np.linalg.norm(k[1] - e)), default=None)
        return best[0] if best is not None and np.linalg.norm(best[1] - e) < 0.6 else None


def main(url: str, robot: int, start_at: float) -> None:
    rng = np.random.default_rng(robot)
    store = open_store(url)
    index = LocalIndex(store)
    c = Consolidator(store, RuleExtractor(), RuleUpdateAgent(), index.identify, face_model="dlib", refresh=index.sync)
    while time.time() < start_at:
        time.sleep(0.005)
    for k in range(SESSIONS_PER_PERSON):
        for p, name in enumerate(PEOPLE):
            said = f"My name is {name}. I work at Robot{robot}Office{k}. I love topic{robot}x{k}."
            s = SessionInput(f"s-{robot}-{p}-{k}", 10.0 * k, 10.0 * k + 5, [Turn(speaker="user", text=said)],
                             face_embeddings=[person_face(p, rng)])
            out = c.process(s)
            print(out.session_id, out.status, out.user_id, flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
