"""Command line: ``tablium-poker replay FILE.phh [FILE.phh ...]`` prints one JSON object per file."""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import PokerError
from .phh import load_phh, replay


def replay_file(path: str) -> dict[str, object]:
    """Replay one PHH file: its finishing stacks, or the error that stopped it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        hand = replay(load_phh(text))
    except (OSError, UnicodeDecodeError) as exc:
        return {"file": path, "error": f"cannot read: {exc}"}
    except PokerError as exc:
        return {"file": path, "error": f"{type(exc).__name__}: {exc}"}
    return {"file": path, "finishing_stacks": hand.stack}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tablium-poker`` console script; exit status 1 if any file failed."""
    parser = argparse.ArgumentParser(prog="tablium-poker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    replay_parser = commands.add_parser("replay", help="replay PHH hand histories through the engine")
    replay_parser.add_argument("files", nargs="+", metavar="FILE.phh")
    args = parser.parse_args(argv)
    failed = False
    for path in args.files:
        result = replay_file(path)
        failed = failed or "error" in result
        sys.stdout.write(json.dumps(result) + "\n")
    return 1 if failed else 0
