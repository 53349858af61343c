"""Where the files of one memory live, beside its database: the spool of sessions waiting to be written,
and the list of reports written of it. Each belongs to exactly one memory (one SQLite file, or one
PostgreSQL database); light enough for any command to import."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..config import EgomemConfig, default_db_path
from ..store.models import is_postgres_url


def spool_dir(cfg: EgomemConfig, db: str | Path | None) -> Path:
    """Where sessions wait to be written: `memory.spool_dir`, else next to the database (a shared server's
    robots each keep their own, in the XDG data dir)."""
    if cfg.memory.spool_dir:
        return Path(cfg.memory.spool_dir)
    return beside(db or "egomem", ".sessions")


def beside(db: str | Path, suffix: str) -> Path:
    """`<db><suffix>` for a SQLite file; for a PostgreSQL database, `fleet-<database>-<hash><suffix>` in the
    XDG data dir (each robot keeps its own)."""
    if is_postgres_url(db):
        return default_db_path().parent / f"fleet-{postgres_identity(str(db))}{suffix}"
    return Path(f"{db}{suffix}")


def postgres_identity(url: str) -> str:
    """A folder-safe name of the database a PostgreSQL URL names (server, port, database; never the
    password): a spool belongs to exactly one memory, so sessions spooled for one database are never
    written into another."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = query.get("host", parts.hostname or "localhost")
    port = str(query.get("port", parts.port or 5432))
    dbname = query.get("dbname", parts.path.lstrip("/") or "")
    digest = hashlib.sha256("\0".join((host, port, dbname)).encode()).hexdigest()[:10]
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", dbname)[:40] or "db"
    return f"{readable}-{digest}"


def reports_registry(db: str | Path) -> Path:
    """The list of the HTML reports written of this memory (`egomem report`, `replay --report`)."""
    return beside(db, ".reports")


def register_report(db: str | Path, report: Path) -> None:
    registry = reports_registry(db)
    known = registry.read_text(encoding="utf-8").splitlines() if registry.exists() else []
    path = str(Path(report).resolve())
    if path not in known:
        registry.write_text("\n".join([*known, path]) + "\n", encoding="utf-8")


def erase_reports(db: str | Path, user_id: str, name: str | None) -> list[Path]:
    """Delete the registered reports that hold the person's id or name; the others stay."""
    registry = reports_registry(db)
    if not registry.exists():
        return []
    kept, erased = [], []
    for line in registry.read_text(encoding="utf-8").splitlines():
        path = Path(line)
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if user_id in text or (name and name in text):
            path.unlink()
            erased.append(path)
        else:
            kept.append(line)
    registry.write_text("".join(f"{k}\n" for k in kept), encoding="utf-8")
    return erased
