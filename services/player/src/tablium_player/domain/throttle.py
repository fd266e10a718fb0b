"""Exponential backoff after failed logins, per client address and per account (OWASP's
advice instead of a hard lockout, which would let anyone lock any account at will).

Three counters per attempt, in Redis so every instance shares them:

- the **address**: failures from one client address, whatever the account. After
  ``free_failures_per_ip`` of them every next attempt from it waits a delay that doubles
  with each further failure (``base_s``, ``2·base_s``, ... up to ``max_s``);
- the **account**: failures against one account, whatever the login string (username or
  e-mail address) and address; the same doubling after ``free_failures_per_account``;
- the **pair** (account, address): whether this address has failed on this account. The
  account's delay is enforced only on addresses that have: a client that has not been
  failing on an account still gets to try its password, so a guesser elsewhere cannot lock
  the owner out.

An attempt counts as a failure the moment it is let through and is taken back when the
password was right, so concurrent attempts cannot all slip through before the first failure
is recorded; a success also clears the pair, so the owner's own typos stop counting against
their address. Counters are forgotten ``memory_s`` (plus the current delay) after the last
attempt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tablium_kit.errors import TooManyRequests

if TYPE_CHECKING:
    from redis.asyncio import Redis

# KEYS: address, account, pair. ARGV: now (ms), free failures per address, per account, base (ms), max (ms),
# memory (s). Each of address and account is a hash {f: failures, u: not before (epoch ms)}; the pair only
# counts. Times are whole milliseconds so that Lua's number formatting never rounds them.
_ATTEMPT = """
local now, base, cap, memory = tonumber(ARGV[1]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local function not_before(key)
  return tonumber(redis.call('HGET', key, 'u') or '0')
end
local wait = not_before(KEYS[1]) - now
if redis.call('EXISTS', KEYS[3]) == 1 then
  wait = math.max(wait, not_before(KEYS[2]) - now)
end
if wait > 0 then
  return wait
end
local function charge(key, free)
  local failures = redis.call('HINCRBY', key, 'f', 1)
  local delay = 0
  if free >= 0 and failures >= free then
    delay = math.min(cap, base * 2 ^ (failures - free))
    redis.call('HSET', key, 'u', tostring(math.max(not_before(key), now + delay)))
  end
  redis.call('EXPIRE', key, memory + math.ceil(delay / 1000))
end
charge(KEYS[1], tonumber(ARGV[2]))
charge(KEYS[2], tonumber(ARGV[3]))
charge(KEYS[3], -1)
return 0
"""

# KEYS: address, account, pair. A success takes back its own attempt and clears this address's
# record on the account; it does not clear failures others caused (else the owner logging in
# would hand a guesser elsewhere a fresh set of free failures).
_SUCCEEDED = """
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  if redis.call('HINCRBY', key, 'f', -1) <= 0 then
    redis.call('DEL', key)
  end
end
redis.call('DEL', KEYS[3])
return 0
"""


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    free_failures_per_ip: int
    free_failures_per_account: int
    base_s: float
    max_s: float
    memory_s: int


class LoginThrottle:
    def __init__(
        self, redis: Redis, *, prefix: str, policy: BackoffPolicy, clock: Callable[[], float] = time.time
    ) -> None:
        self.policy = policy
        self.clock = clock
        self._prefix = prefix
        self._attempt = redis.register_script(_ATTEMPT)
        self._succeeded = redis.register_script(_SUCCEEDED)

    def _keys(self, client_ip: str, account: str) -> list[str]:
        prefix = self._prefix
        return [f"{prefix}:ip:{client_ip}", f"{prefix}:account:{account}", f"{prefix}:pair:{account}:{client_ip}"]

    async def attempt(self, *, client_ip: str, account: str) -> None:
        """Let one password check through, or raise 429 with how long to wait.

        ``account`` names the account (its id), or the login string when no account has it,
        so unknown and known logins are throttled alike.
        """
        policy = self.policy
        wait = await self._attempt(
            keys=self._keys(client_ip, account),
            args=[
                round(self.clock() * 1000),
                policy.free_failures_per_ip,
                policy.free_failures_per_account,
                round(policy.base_s * 1000),
                round(policy.max_s * 1000),
                policy.memory_s,
            ],
        )
        if wait > 0:
            retry_after = math.ceil(wait / 1000)
            raise TooManyRequests(f"too many failed logins; try again in {retry_after} s", retry_after_s=retry_after)

    async def succeeded(self, *, client_ip: str, account: str) -> None:
        await self._succeeded(keys=self._keys(client_ip, account))
