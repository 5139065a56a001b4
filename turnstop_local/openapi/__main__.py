"""``python -m turnstop_local.openapi [--check]``: write (or check) the committed documents."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from turnstop_local.openapi.build import documents, render

OUT = Path(__file__).resolve().parents[2] / "openapi"


def stale(out: Path = OUT) -> list[str]:
    """The files under ``out`` that differ from what the models build now (or are missing)."""
    return [
        name
        for name, doc in documents().items()
        if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != render(doc)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m turnstop_local.openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        if names := stale():
            print("out of date: " + ", ".join(names) + " (run make openapi)", file=sys.stderr)
            return 1
        return 0
    OUT.mkdir(exist_ok=True)
    for name, doc in documents().items():
        (OUT / name).write_text(render(doc), encoding="utf-8")
        print(f"openapi/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
