"""Top entries of a py-spy ``--format raw`` profile (collapsed stacks): self and inclusive share per function.

Usage: ``.venv/bin/python bench/pyspy_top.py PROFILE [--top 25] [--grep tablium_]``
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--grep", default="", help="inclusive entries only for frames containing this")
    args = parser.parse_args()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";") if not f.startswith("process ")] or ["(no Python frame)"]
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"{total} samples\n\nself:")
    for frame, n in own.most_common(args.top):
        print(f"  {n / total:6.1%}  {frame}")
    print("\ninclusive:")
    shown = 0
    for frame, n in inclusive.most_common():
        if args.grep and args.grep not in frame:
            continue
        print(f"  {n / total:6.1%}  {frame}")
        shown += 1
        if shown == args.top:
            break


if __name__ == "__main__":
    main()
