"""Model files: atomic writes, and loads that unpickle only the bytes whose hash was checked."""

from __future__ import annotations

import hashlib
import os

import pytest

from abidance.ml.artifacts import (
    ArtifactError, dump_joblib, load_joblib, normalize_sha256, read_verified, sha256_file, write_atomic,
)


def test_dump_returns_the_hash_of_the_file_and_load_checks_it(tmp_path):
    path = tmp_path / "deep" / "m.joblib"
    digest = dump_joblib(path, {"w": [1, 2, 3]})
    assert digest == sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_joblib(path, digest.upper()) == ({"w": [1, 2, 3]}, digest)
    assert load_joblib(path, None)[1] == digest                 # no expectation: loaded, hash reported
    with pytest.raises(ArtifactError, match=f"m.joblib refused: its sha256 is {digest}, expected {'0' * 64}"):
        load_joblib(path, "0" * 64)
    path.write_bytes(b"not a pickle")
    with pytest.raises(ArtifactError, match="model file .* is not readable: "):
        load_joblib(path, None)
    with pytest.raises(ArtifactError, match="cannot be read"):
        read_verified(tmp_path / "missing", None, what="model file")


@pytest.mark.parametrize("bad", ["abc", "g" * 64, 123, None, "0" * 63])
def test_a_malformed_expected_hash_is_refused_with_the_caller_s_error_class(bad):
    class ModelError(ValueError):
        pass

    with pytest.raises(ModelError, match="expected sha256 must be 64 hex digits"):
        normalize_sha256(bad, error=ModelError)


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "m.joblib"
    write_atomic(path, b"old")

    def fsync_fails(_fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fsync_fails)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, b"new and longer")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["m.joblib"]
