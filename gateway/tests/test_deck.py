"""kong.yml passes Kong's own offline validator, decK, where it is installed.

decK is packaged by Debian (``apt-get install deck``); newer releases validate with
``deck gateway validate`` (which needs a running Kong) or ``deck file validate``
(offline), older ones with ``deck validate -s FILE`` (offline).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DECK = shutil.which("deck")
pytestmark = pytest.mark.skipif(DECK is None, reason="decK is not installed (apt-get install deck)")


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    assert DECK is not None
    for command in ([DECK, "file", "validate", str(path)], [DECK, "validate", "-s", str(path)]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if "unknown command" not in (result.stdout + result.stderr):
            return result
    pytest.fail("this decK has neither `file validate` nor `validate`")


def test_deck_validates_kong_yml(kong_yml: Path) -> None:
    result = _validate(kong_yml)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deck_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "kong.yml"
    broken.write_text('_format_version: "3.0"\nservices:\n  - name: player\n    routes: [{name: r, paths: 3}]\n')
    assert _validate(broken).returncode != 0
