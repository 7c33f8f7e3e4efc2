"""CLI start-up benchmark: what a person waits for before any work is done.

    python bench/cli.py [--accounts 10000] [--days 90] [--runs 9] [--database FILE]
                        [--baseline COMMIT]

Builds a database of ``--accounts`` accounts with bench/scoring.py's generator (5
connections each, ``--days`` of daily rollups; one account renamed "Acme Corp"), scores
every account once, then times, as separate processes over the real entry point
(``python -m integration_signals``, the console script's code):

- ``signals --help`` and ``signals --version``;
- ``signals health acme --as-of <the scoring day>``: the steady state under `signals
  serve` (the day's scores stored, so the card reads the stored peer percentiles);
- ``signals health acme`` as of now, a day with no stored scores, so the percentiles
  against every peer are recomputed.

"acme" is neither an id, a name nor a domain: both health runs take the fuzzy-name path
over every account's name. ``python -c pass`` runs in the same rounds (commands
interleaved, so load hits all alike), and so do the same commands on the code of
``--baseline`` (default: the commit before the start-up work). Prints medians of wall
and CPU time and ratios, and rewrites its section of bench/README.md with the load.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, update  # noqa: E402

from bench._readme import write_section  # noqa: E402
from bench.scoring import END, generate  # noqa: E402
from integration_signals.config import load_config  # noqa: E402
from integration_signals.scoring.run import score_accounts  # noqa: E402
from integration_signals.store.engine import make_engine  # noqa: E402
from integration_signals.store.models import Account, AccountScore  # noqa: E402

SIGNALS = [sys.executable, "-m", "integration_signals"]
_DAY = END.isoformat()  # the day the accounts were scored
# (label, argv, target wall seconds on a quiet machine or None, also run on the baseline)
COMMANDS: list[tuple[str, list[str], float | None, bool]] = [
    ("python -c pass", [sys.executable, "-c", "pass"], None, False),
    ("signals --help", [*SIGNALS, "--help"], 0.3, True),
    ("signals --version", [*SIGNALS, "--version"], None, False),
    (
        "signals health acme --as-of SCORED",
        [*SIGNALS, "health", "acme", "--as-of", _DAY],
        0.6,
        True,
    ),
    ("signals health acme (peers recomputed)", [*SIGNALS, "health", "acme"], None, True),
]
# Before issue 14's start-up work: every command imported pydantic, SQLAlchemy, the ORM
# models and the destinations, and Alembic's script directory checked the schema.
BASELINE = "f126766"


def prepare(database: Path, accounts: int, days: int) -> tuple[int, float]:
    """The database: generated and scored once (reused when it already holds scores)."""
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        scored = conn.execute(select(func.count()).select_from(AccountScore)).scalar_one()
    if scored:
        engine.dispose()
        return scored, 0.0
    started = time.perf_counter()
    generate(engine, accounts, 5, days)
    with engine.begin() as conn:
        conn.execute(
            update(Account.__table__)
            .where(Account.__table__.c.account_id == "acct-00042")
            .values(name="Acme Corp", domain="acme.com")
        )
    score_accounts(engine, load_config(None), as_of=END, full=True)
    engine.dispose()
    return accounts, time.perf_counter() - started


def checkout(commit: str, into: Path) -> Path:
    """The tree of ``commit`` (``git archive``), to run the same commands on."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def run_once(argv: list[str], env: dict[str, str], root: Path = ROOT) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one process running the code in ``root``."""
    env = {**env, "PYTHONPATH": str(root)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=root, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--database", default=None, help="reuse this SQLite file")
    parser.add_argument("--baseline", default=BASELINE, help="commit to compare with ('' none)")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(args.database or Path(tmp) / "cli.db")
        n_accounts, t_prep = prepare(database, args.accounts, args.days)
        print(f"database: {n_accounts:,} scored accounts (prepared in {t_prep:.1f}s)", flush=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNALS_", "PYTHON"))}
        env |= {"SIGNALS_DATABASE_URL": f"sqlite:///{database}", "COLUMNS": "100"}
        runs = [(label, argv, ROOT) for label, argv, _target, _base in COMMANDS]
        if args.baseline:
            old = checkout(args.baseline, Path(tmp) / "baseline")
            runs += [(f"{label} @base", argv, old) for label, argv, _t, base in COMMANDS if base]
        for _label, argv, root in runs:  # warm the caches (bytecode, page cache)
            run_once(argv, env, root)
        walls: dict[str, list[float]] = {label: [] for label, _, _ in runs}
        cpus: dict[str, list[float]] = {label: [] for label, _, _ in runs}
        for i in range(args.runs):
            for label, argv, root in runs:
                wall, cpu = run_once(argv, env, root)
                walls[label].append(wall)
                cpus[label].append(cpu)
            print(
                f"round {i + 1}: "
                + ", ".join(f"{label} {walls[label][-1]:.3f}s" for label, _, _ in runs),
                flush=True,
            )
    load = os.getloadavg()
    med = {k: (statistics.median(walls[k]), statistics.median(cpus[k])) for k in walls}
    base_wall = med["python -c pass"][0]
    rows = []
    for label, _argv, target, _base in COMMANDS:
        wall, cpu = med[label]
        ratio = "1" if label == "python -c pass" else f"{wall / base_wall:.1f}x"
        goal = f"<= {target} s (quiet machine)" if target else ""
        old = med.get(f"{label} @base")
        before = f"{old[0]:.3f} s / {old[1]:.3f} s ({old[0] / wall:.1f}x)" if old else ""
        rows.append(f"| `{label}` | {wall:.3f} s | {cpu:.3f} s | {ratio} | {before} | {goal} |")
        print(f"{label}: wall {wall:.3f}s, cpu {cpu:.3f}s, {ratio} python -c pass; {before}")
    if not args.no_readme:
        write_section(
            "cli",
            f"`python bench/cli.py` (SQLite; {n_accounts:,} accounts from bench/scoring.py's"
            f" generator, 5 connections each, {args.days} days of rollups, all scored;"
            " one account renamed Acme Corp, so `health acme` takes the fuzzy-name path"
            " over every name; SCORED is the day they were scored, so the card reads the"
            " stored peer percentiles as it does under `signals serve`, while as of now"
            f" (no scores stored for the day) it recomputes them against all {n_accounts:,})."
            " Each command is its own process through `python -m integration_signals`;"
            f' medians of {args.runs} interleaved rounds. "Before" is the same command on'
            f" the code of commit {args.baseline or '(none)'}, in the same rounds: every"
            " command then imported pydantic, SQLAlchemy, the ORM models and the"
            " destinations, and Alembic checked the schema.\n\n"
            "| command | wall | CPU (user+sys) | wall vs `python -c pass` | before: wall / CPU"
            " (speed-up) | target |\n| --- | --- | --- | --- | --- | --- |\n"
            + "\n".join(rows)
            + "\n\nThe machine is shared: load average"
            f" {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) at the end of this"
            " run on 2 cores, so wall times are inflated; the ratios, measured in the same"
            " rounds, are the figures to compare.\n",
        )


if __name__ == "__main__":
    main()
