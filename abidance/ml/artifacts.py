"""Model files on disk: written atomically, hashed, and verified on the very bytes loaded.

A joblib file (and a stable-baselines3 zip) is a pickle: loading one runs code. So
`read_verified` reads the file once, compares the sha256 of those bytes with the expected
one BEFORE anything unpickles them, and the loaders unpickle those same bytes: a file
swapped between the check and the load cannot slip in. `write_atomic` writes beside the
target and renames it into place: a reader never sees half a file.

Used by the signal models (models.py), the regime models (regime.py) and the RL agents
(rl/agent.py).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

HEX = frozenset("0123456789abcdef")


class ArtifactError(ValueError):
    """A model file that is missing, unreadable, altered, or not what it should be."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks (for files too big to hold at once)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def normalize_sha256(value, *, error: type[ValueError] = ArtifactError) -> str:
    """A sha256 as 64 lower-case hex digits; `error` naming the value otherwise."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if len(text) != 64 or not set(text) <= HEX:
        raise error(f"expected sha256 must be 64 hex digits, got {value!r}")
    return text


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dump_joblib(path: str | Path, obj) -> str:
    """Pickle `obj` with joblib into `path`, atomically; returns the file's sha256."""
    # Lazy: joblib is the ml extra: only reading or writing a model file needs it.
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf)
    data = buf.getvalue()
    write_atomic(path, data)
    return sha256_bytes(data)


def read_verified(path: str | Path, expected_sha256: str | None, *, what: str = "model file",
                  error: type[ValueError] = ArtifactError) -> tuple[bytes, str]:
    """(the file's bytes, their sha256), read once; refused (`error`) unless they hash to
    `expected_sha256` when one is given."""
    expected = None if expected_sha256 is None else normalize_sha256(expected_sha256, error=error)
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    actual = sha256_bytes(data)
    if expected is not None and actual != expected:
        raise error(f"{what} {path} refused: its sha256 is {actual}, expected {expected}")
    return data, actual


def load_joblib(path: str | Path, expected_sha256: str | None, *, what: str = "model file",
                error: type[ValueError] = ArtifactError) -> tuple[object, str]:
    """(the unpickled object, the file's sha256): hash checked first, the same bytes unpickled."""
    # Lazy: joblib is the ml extra: only reading or writing a model file needs it.
    import joblib

    data, digest = read_verified(path, expected_sha256, what=what, error=error)
    try:
        return joblib.load(io.BytesIO(data)), digest
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a readable file"
        raise error(f"{what} {path} is not readable: {type(exc).__name__}: {exc}") from None
