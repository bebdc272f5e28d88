"""The fuzz targets stay: their seed corpus replays clean, and each is fuzzed for a bounded time.

ABIDANCE_FUZZ_SECONDS (default 3) bounds each target's run. With atheris installed (the dev extra)
the run is coverage-guided libFuzzer in a child process (`python -m tests.fuzz.run`); without it,
a seeded mutation of the corpus in this process for the same time.
"""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
import time

import pytest

from tests.fuzz.targets import TARGETS, seeds
from tests.kit import PROJECT_ROOT

# A fixed seed keeps the test command's short run repeatable; longer runs (tests/fuzz/README.md) explore
# with fresh seeds, and every failure they find joins the seed corpus as its regression test.
FUZZ_SEED = int(os.environ.get("ABIDANCE_FUZZ_SEED", "16"))

SECONDS = float(os.environ.get("ABIDANCE_FUZZ_SECONDS", "3"))
NEEDS = {"store_http": ("chdb", "clickhouse_connect")}


def _skip_without(name: str) -> None:
    for module in NEEDS.get(name, ()):
        pytest.importorskip(module)


@pytest.fixture(scope="module", autouse=True)
def _stop_the_fuzzing_store():
    yield
    from tests.fuzz.targets import _Store

    _Store.close()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seed_corpus_replays_clean(name):
    _skip_without(name)
    corpus = seeds(name)
    assert corpus, f"tests/fuzz/corpus/{name} is empty"
    for data in corpus:
        TARGETS[name](data)


def _mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1:
            b.insert(rng.randint(0, len(b)), rng.randrange(256))
        elif op == 2 and b:
            del b[rng.randrange(len(b))]
        elif op == 3 and b:
            i = rng.randrange(len(b))
            b[i:i] = b[i:i + rng.randint(1, 16)] * rng.randint(1, 4)
        elif op == 4:
            other = rng.choice(pool)
            cut = rng.randint(0, len(b))
            b = b[:cut] + other[rng.randint(0, len(other)):]
        elif b:
            b = b[:rng.randint(0, len(b))]
    return bytes(b)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_for_a_bounded_time(name, tmp_path):
    _skip_without(name)
    if importlib.util.find_spec("atheris") is not None:
        cmd = [sys.executable, "-m", "tests.fuzz.run", name, f"-max_total_time={int(max(SECONDS, 1))}",
               "-rss_limit_mb=4096", "-timeout=20", f"-seed={FUZZ_SEED}", str(tmp_path)]
        out = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=SECONDS + 120)
        assert out.returncode == 0, f"{name}: fuzzing found a failure:\n{out.stderr[-4000:]}"
        assert "Done" in out.stderr or "DONE" in out.stderr, out.stderr[-2000:]
        return
    rng, pool, deadline = random.Random(16), seeds(name), time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        data = _mutate(rng, rng.choice(pool), pool)
        try:
            TARGETS[name](data)
        except AssertionError as exc:
            raise AssertionError(f"{name}: input {data!r} failed: {exc}") from None
