"""Account owners are matched whole: ``$`` alone would let a trailing newline through."""

from __future__ import annotations

import pytest
from tablium_wallet.domain.accounts import check_owner

from tablium_kit.errors import InvalidInput


@pytest.mark.parametrize(
    ("owner", "kind"),
    [
        ("house\n", "house_rake"),
        ("rakeback\n", "rakeback_pool"),
        ("chain:1\n", "chain_clearing"),
        ("table:t1\n", "table_escrow"),
        ("player:00000000-0000-0000-0000-000000000001\n", "player"),
        ("club:00000000-0000-0000-0000-000000000001\n", "club"),
        ("union:00000000-0000-0000-0000-000000000001\n", "union"),
    ],
)
def test_an_owner_with_a_trailing_newline_is_refused(owner: str, kind: str) -> None:
    check_owner(owner.rstrip("\n"), kind)
    with pytest.raises(InvalidInput):
        check_owner(owner, kind)
