"""The README's benchmark command runs every benchmark and writes its JSON (issue 17: it once
collected nothing from benchmarks/, exited 5 and wrote no file).

One subprocess runs that command as written, narrowed with -k to one cheap benchmark (a full
run takes many minutes): pytest still collects every file, and a plugin lists what it collected."""

import json
import os
import shlex
import subprocess
import sys

from tests.kit import PROJECT_ROOT

PLUGIN = "tests.unit.collected_plugin"
CHEAP = "test_bench_check_c_all_checks_accepted_limit"      # benchmarks/bench_risk.py: ~1 s measured


def readme_benchmark_command() -> list[str]:
    lines = (PROJECT_ROOT / "README.md").read_text().splitlines()
    i = lines.index("## Benchmarks")
    assert lines[i + 2].startswith("```"), "a fenced command must follow ## Benchmarks"
    return shlex.split(lines[i + 3])


def test_the_readme_benchmark_command_collects_every_benchmark_and_writes_its_json(tmp_path):
    args = readme_benchmark_command()
    assert args[:4] == [".venv/bin/python", "-m", "pytest", "benchmarks"], args
    json_opt = [a for a in args if a.startswith("--benchmark-json=")]
    assert json_opt, f"the README's benchmark command writes no JSON: {args}"
    out_json, collected = tmp_path / "bench.json", tmp_path / "collected.txt"
    run = [sys.executable, *args[1:]]
    run[run.index(json_opt[0])] = f"--benchmark-json={out_json}"      # not over the recorded results
    out = subprocess.run([*run, "-k", CHEAP, "-p", PLUGIN, "-p", "no:cacheprovider", "-q"], cwd=PROJECT_ROOT,
                         env={**os.environ, "ABIDANCE_COLLECTED": str(collected)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    files = {line.split("::")[0] for line in collected.read_text().split()}
    on_disk = {f"benchmarks/{p.name}" for p in (PROJECT_ROOT / "benchmarks").glob("bench_*.py")}
    assert on_disk - files == set(), f"benchmark files pytest does not collect: {sorted(on_disk - files)}"
    ran = json.loads(out_json.read_text())["benchmarks"]
    assert [b["name"] for b in ran] == [CHEAP]
    assert ran[0]["extra_info"]["verdict"] in ("MET", "MISSED", "n/a")       # the figure was reported
