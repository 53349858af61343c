"""`egomem enroll`: add a person with real face and voice embeddings."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import ConfigOption, DbOption, console, fail, get_config, open_store


def enroll(name: Annotated[str, typer.Option("--name", help="The person's name.")],
           face: Annotated[Optional[list[Path]], typer.Option("--face", help="Face image (repeatable).")] = None,
           voice: Annotated[Optional[list[Path]], typer.Option("--voice", help="Voice clip (repeatable).")] = None,
           db: DbOption = None, config: ConfigOption = None) -> None:
    """Enrol a person from face images and/or voice clips (embedded with the configured backends)."""
    from ..retrieval.enrollment import EnrollmentError, enroll_person
    from ..retrieval.factory import make_face_engine, make_voice_engine

    faces, voices = face or [], voice or []
    if not faces and not voices:
        fail("give at least one --face IMAGE or --voice CLIP")
    if not name.strip():
        fail("--name must not be empty")
    cfg = get_config(config)
    try:
        face_engine = make_face_engine(cfg.identity, worker_process=False) if faces else None
        voice_engine = make_voice_engine(cfg.identity) if voices else None
    except (ImportError, ValueError) as err:
        fail(f"cannot load the recognition backends: {err}")
    with open_store(db, config, create=True) as store:
        try:
            rep = enroll_person(store, name.strip(), faces=faces, voices=voices,
                                face_engine=face_engine, voice_engine=voice_engine)
        except EnrollmentError as err:
            fail(str(err))
        for src, why in rep.rejected:
            console.print(f"[yellow]skipped[/] {src}: {why}")
        console.print(f"enrolled {rep.user.name} as {rep.user.id}: {rep.face_keys} face key(s), "
                      f"{rep.voice_keys} voice key(s)")


def register(app: typer.Typer) -> None:
    app.command()(enroll)
