"""Face and voice templates encrypted at rest with AES-256-GCM (`cryptography`), when a key is configured.

The key never sits in the config YAML: `EGOMEM_KEY_FILE` names a file holding it (32 raw bytes, 64 hex
digits or base64; `egomem keygen` writes one, 0600), or `EGOMEM_KEY` holds it (hex or base64). With a key,
every template written to the store (SQLite or PostgreSQL) and every embedding of a session in the spool
is sealed: `EGK1` + a 12-byte random nonce + ciphertext and tag. Templates stored in clear before a key was
set are still read; `egomem rekey` seals them, and changes the key, in one transaction. A missing or wrong
key is an error that names what to set, before anything is written, so no row is ever sealed with a key
that does not open the others.
"""
from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .models import StoreError

ENV_KEY, ENV_KEY_FILE = "EGOMEM_KEY", "EGOMEM_KEY_FILE"
MAGIC = b"EGK1"
_AAD = b"egomem biometric template v1"


class TemplateKeyError(StoreError):
    pass


@dataclass(frozen=True)
class TemplateCipher:
    key: bytes

    def seal(self, plain: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = secrets.token_bytes(12)
        return MAGIC + nonce + AESGCM(self.key).encrypt(nonce, plain, _AAD)

    def open(self, blob: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(self.key).decrypt(blob[4:16], blob[16:], _AAD)
        except InvalidTag:
            raise TemplateKeyError("the configured key does not open the stored face and voice templates: "
                                   f"check {ENV_KEY_FILE} / {ENV_KEY} (egomem rekey changes the key)") from None


def is_sealed(blob: bytes) -> bool:
    return bytes(blob[:4]) == MAGIC


def open_blob(blob: bytes, cipher: TemplateCipher | None) -> bytes:
    """A stored template's bytes: opened when sealed, as they are when stored in clear."""
    blob = bytes(blob)
    if not is_sealed(blob):
        return blob
    if cipher is None:
        raise TemplateKeyError(f"the face and voice templates are encrypted: set {ENV_KEY_FILE} (a key file) "
                               f"or {ENV_KEY} to the key they were sealed with")
    return cipher.open(blob)


def embedding_to_json(vector: np.ndarray, cipher: TemplateCipher | None) -> list[float] | dict[str, str]:
    """An embedding as a JSON file holds it (the spool): its numbers, or {"sealed": base64} under a key."""
    vector = np.asarray(vector, np.float32)
    if cipher is None:
        return vector.tolist()
    return {"sealed": base64.b64encode(cipher.seal(vector.tobytes())).decode()}


def embedding_from_json(value: list[float] | dict[str, str], cipher: TemplateCipher | None) -> np.ndarray:
    if isinstance(value, dict):
        return np.frombuffer(open_blob(base64.b64decode(value["sealed"]), cipher), np.float32)
    return np.asarray(value, np.float32)


def parse_key(raw: bytes, where: str) -> TemplateCipher:
    text = raw.strip()
    candidates = [raw] if len(raw) == 32 else []
    for decode in (binascii.unhexlify, base64.b64decode):
        try:
            candidates.append(decode(text))
        except (binascii.Error, ValueError):
            pass
    for key in candidates:
        if len(key) == 32:
            return TemplateCipher(key)
    raise TemplateKeyError(f"{where}: a key is 32 bytes (raw, 64 hex digits or base64); egomem keygen writes one")


def cipher_from_env() -> TemplateCipher | None:
    """The configured key, or None when there is none (templates are then stored in clear)."""
    if os.environ.get(ENV_KEY_FILE):
        path = Path(os.environ[ENV_KEY_FILE]).expanduser()
        try:
            return parse_key(path.read_bytes(), f"{ENV_KEY_FILE}={path}")
        except OSError as err:
            raise TemplateKeyError(f"{ENV_KEY_FILE}={path}: {err.strerror}") from None
    if os.environ.get(ENV_KEY):
        return parse_key(os.environ[ENV_KEY].encode(), ENV_KEY)
    return None


def write_key_file(path: Path) -> None:
    """A new random key, readable by its owner alone."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64encode(AESGCM.generate_key(bit_length=256)) + b"\n")
