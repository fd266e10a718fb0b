"""The wallet's internal API, as the blockchain service uses it: a withdrawal's hold."""

from __future__ import annotations

from typing import Any

from tablium_blockchain.db.models import Withdrawal
from tablium_kit.errors import ProblemError
from tablium_kit.internal import UpstreamError
from tablium_kit.money import format_amount
from tablium_kit.wallet import WalletClient

# The wallet's answers that refuse a withdrawal for good (the player's funds or limits, a frozen account).
REFUSALS = frozenset({"insufficient-funds", "limit-exceeded", "withdrawals-frozen"})


class WithdrawalRefused(ProblemError):
    """The wallet refused the hold for good (funds, a limit, frozen withdrawals): shown to the player."""

    status_code = 409
    title = "Withdrawal refused"
    slug = "withdrawal-refused"


class Wallet(WalletClient):
    async def hold_withdrawal(self, withdrawal: Withdrawal) -> dict[str, Any]:
        """Place (or, replayed, find) the withdrawal's hold; :class:`WithdrawalRefused` if the wallet says no."""
        body = {
            "withdrawal_id": str(withdrawal.id),
            "player_id": str(withdrawal.player_id),
            "chain_id": withdrawal.chain_id,
            "asset": withdrawal.asset,
            "amount": format_amount(withdrawal.amount),
            "address": withdrawal.address,
        }
        try:
            result: dict[str, Any] = await self.client.request(
                "POST", "/internal/v1/withdrawals/holds", json=body, idempotency_key=f"withdrawal:{withdrawal.id}"
            )
        except UpstreamError as exc:
            reason = str(exc.problem.get("type", "")).removeprefix("urn:tablium:problem:")
            if reason in REFUSALS:
                raise WithdrawalRefused(exc.upstream_detail, extra={"reason": reason}) from exc
            raise  # anything else (a 403 for our own token, a 5xx) is ours to retry, not the player's refusal
        return result
