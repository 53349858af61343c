"""Face and voice templates (biometric keys), written once for both SQL dialects: mixed into `SqlStore`.
Sealed at rest when a key is configured (store/sealing.py)."""
from __future__ import annotations

import numpy as np

from .models import BiometricKey, Modality, StoreError
from .sealing import MAGIC, TemplateCipher, open_blob

_KEY_TABLES = {"face": "face_keys", "voice": "voice_keys"}


class Templates:
    """Uses `SqlStore`'s `transaction`, `lock_user`, `_x`, `_q`, `_log`, `clock`, `cipher` and `_compacted`."""

    def add_key(self, user_id: str, modality: Modality, model: str, vector: np.ndarray) -> int:
        table = _KEY_TABLES[modality]
        vec = np.asarray(vector, dtype=np.float32).ravel()
        if vec.size == 0 or not np.all(np.isfinite(vec)):
            raise StoreError(f"refusing a {modality} key with no values or NaN/inf values")
        with self.transaction():
            self.lock_user(user_id)
            mixed = self._q(f"SELECT DISTINCT model, dim FROM {table} WHERE user_id=? AND (model!=? OR dim!=?)",
                            (user_id, model, vec.size))
            if mixed:
                raise StoreError(f"user {user_id} already has {modality} keys from model {mixed[0][0]} "
                                 f"({mixed[0][1]}-d); refusing a key from {model} ({vec.size}-d)")
            self._check_key()
            blob = self.cipher.seal(vec.tobytes()) if self.cipher else vec.tobytes()
            key_id = int(self._x(
                f"INSERT INTO {table} (user_id, model, dim, vec, created_at) VALUES (?,?,?,?,?) RETURNING id",
                (user_id, model, vec.size, blob, self.clock()),
            ).fetchone()[0])
            self._log("ADD", user_id, f"{modality}_key", str(key_id), f"model={model} dim={vec.size}")
        return key_id

    def keys_revision(self) -> tuple[int, ...]:
        """Changes whenever a key is added or deleted, by any process: when the galleries must reload."""
        return tuple(self._q("SELECT (SELECT count(*) FROM face_keys), (SELECT coalesce(max(id), 0) FROM face_keys), "
                             "(SELECT count(*) FROM voice_keys), (SELECT coalesce(max(id), 0) FROM voice_keys)")[0])

    def _keys(self, modality: Modality, where: str, args: tuple) -> list[BiometricKey]:
        rows = self._q(f"SELECT id, user_id, model, vec FROM {_KEY_TABLES[modality]} {where} ORDER BY id", args)
        return [BiometricKey(r[0], r[1], modality, r[2], np.frombuffer(open_blob(r[3], self.cipher), dtype=np.float32))
                for r in rows]

    def _check_key(self) -> None:
        """Before the first template is written: the configured key (or none) opens what is stored, so no
        row is ever sealed with a key that does not open the others."""
        if self._key_checked:
            return
        for table in _KEY_TABLES.values():   # a sealed one: templates stored in clear open with any key
            for (blob,) in self._q(f"SELECT vec FROM {table} WHERE substr(vec, 1, 4) = ? ORDER BY id LIMIT 1", (MAGIC,)):
                open_blob(blob, self.cipher)
        self._key_checked = True

    def reseal_templates(self, new: TemplateCipher | None) -> int:
        """Every template opened with the current key and sealed with `new` (None: stored in clear), in one
        transaction, then compacted so that no old bytes stay in the files. Returns how many."""
        count = 0
        with self.transaction():
            for table in _KEY_TABLES.values():
                for key_id, blob in self._q(f"SELECT id, vec FROM {table}"):
                    plain = open_blob(blob, self.cipher)
                    self._x(f"UPDATE {table} SET vec=? WHERE id=?", (new.seal(plain) if new else plain, key_id))
                    count += 1
            self._log("UPDATE", None, "keys", None, f"{count} templates {'sealed with a new key' if new else 'in clear'}")
        self.cipher, self._key_checked = new, True
        self._compacted("the templates are resealed")
        return count

    def keys(self, modality: Modality, model: str | None = None) -> list[BiometricKey]:
        if model is None:
            return self._keys(modality, "", ())
        return self._keys(modality, "WHERE model=?", (model,))

    def user_keys(self, user_id: str, modality: Modality) -> list[BiometricKey]:
        return self._keys(modality, "WHERE user_id=?", (user_id,))

