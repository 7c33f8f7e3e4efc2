"""Write one benchmark's section of bench/README.md, leaving the others as they are."""

from __future__ import annotations

import platform
import re
from datetime import UTC, datetime
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_section(name: str, body: str) -> None:
    text = README.read_text("utf-8") if README.exists() else "# Benchmarks\n"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"<!-- bench:{name}:start -->\n### {name}\n\n"
        f"Measured {stamp} on {platform.machine()}, Python {platform.python_version()}.\n\n"
        f"{body.rstrip()}\n<!-- bench:{name}:end -->"
    )
    pattern = re.compile(rf"<!-- bench:{name}:start -->.*?<!-- bench:{name}:end -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text, "utf-8")
