"""Nothing left behind: `signals ingest` of a big file parses in a worker process, and
when the command is killed with SIGKILL that worker (and anything else it started)
exits too, releasing the command's stdout so a pipe reader sees the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[1])  # a zombie has exited


def descendants(root: int) -> set[int]:
    """Live processes whose parent chain reaches ``root``."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = _ppid(int(entry))
            if ppid is not None:
                parents[int(entry)] = ppid
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    return _ppid(pid) is not None


def big_file(path: Path, min_bytes: int = 24 * 1024 * 1024) -> Path:
    lines = []
    size = 0
    i = 0
    while size < min_bytes:
        line = orjson.dumps(
            {
                "event_id": f"big-{i}",
                "type": "sync.succeeded",
                "occurred_at": f"2025-0{1 + i % 9}-1{i % 10}T10:00:00Z",
                "account_id": f"acct-{i % 500}",
                "integration": ("salesforce", "zendesk", "slack")[i % 3],
                "records": i % 1000,
                "properties": {"note": "padding " * 8},
            }
        )
        lines.append(line)
        size += len(line) + 1
        i += 1
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_a_killed_ingest_leaves_no_worker_behind_and_its_stdout_ends(tmp_path: Path) -> None:
    source = big_file(tmp_path / "big.jsonl")
    assert source.stat().st_size >= 8 * 1024 * 1024  # above PARALLEL_PARSE_BYTES
    env = {
        **os.environ,
        "SIGNALS_DATABASE_URL": f"sqlite:///{tmp_path / 'signals.db'}",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "integration_signals", "ingest", str(source), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    children: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        children = descendants(proc.pid)
        if children:
            time.sleep(0.1)  # the pool may start more than one worker
            children |= descendants(proc.pid)
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the import ended before it could be killed"
    assert children, "no worker process was started for a file of 8 MiB or more"

    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ended = threading.Event()
    reader = threading.Thread(target=lambda: (proc.stdout.read(), ended.set()), daemon=True)
    reader.start()

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.1)
    left = [pid for pid in children if alive(pid)]
    for pid in left:  # do not leak them into the rest of the run
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes still alive 5 s after the command was killed: {left}"
    assert ended.wait(5), "the command's stdout is still held open"
