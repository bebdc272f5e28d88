"""The campaign's child processes (simulator, store, node) and what /proc says about them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace


def _cli(*args: str, env: dict | None = None, stdout=subprocess.PIPE) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "abidance.cli", *args], stdout=stdout,
                            stderr=subprocess.STDOUT, text=True, env=env)


def start_sim(speed: float, seed: int) -> tuple[subprocess.Popen, SimpleNamespace]:
    proc = _cli("sim", "--rest-port", "0", "--ws-port", "0", "--speed", str(speed), "--seed", str(seed),
                "--log-level", "ERROR")
    line = proc.stdout.readline()
    m = re.search(r"REST (\S+)\s+streams (\S+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"the simulator did not start: {line.strip() or 'no output'}")
    # Nobody reads its output from here on: drain it so that a full pipe never blocks it.
    _drain(proc)
    return proc, SimpleNamespace(rest_url=m.group(1), ws_url=m.group(2))


def start_store(data_dir: Path, port: int) -> subprocess.Popen:
    proc = _cli("store", "--data-dir", str(data_dir), "--port", str(port), "--log-level", "ERROR")
    line = proc.stdout.readline()
    if "abidance store ready" not in line:
        proc.kill()
        raise RuntimeError(f"the store did not start: {line.strip() or 'no output'}")
    _drain(proc)
    return proc


def start_node(config: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "abidance.cli", "run", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _drain(proc: subprocess.Popen) -> None:
    def run():
        for _ in proc.stdout:
            pass
    threading.Thread(target=run, daemon=True, name=f"drain-{proc.pid}").start()


def kill9(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill9(proc)
    return proc.returncode


def rss_bytes(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(m.group(1)) * 1024 if m else 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
