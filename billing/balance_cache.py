"""Each account's balance, mirrored in Redis for the X-Credit-Balance header.

The wallet row stays the only truth: debits and credits lock and change it in the database. Every
change bumps the wallet's version, and after its commit the new balance is written here as
"version:balance" only if that version is newer than the one already stored, so writes arriving out of
order never leave an older balance behind. The header reads it in the request's one shared-store round
trip (accounts.auth); a missing entry is read from the database and stored the same way. Entries
expire, which bounds what a process that died between commit and write could leave behind.
Without Redis nothing is mirrored and the header reads the database.

One writer goes first: a submit sends its debit's new balance with its job's queue message, in one
round trip just before its commit (BalanceMirror.command). It still holds the wallet row then, so no
other change can commit in between and a plain SET is right; it also replaces whatever a failed attempt
left behind. A submit that fails, before or after its balance went out, takes the entry back
(balance_forget), and the next request reads the database.
"""

import logging
from dataclasses import dataclass
from typing import Any

import redis
from django.db import transaction

from flixly_site.shared import LuaScript, redis_client

logger = logging.getLogger("flixly.billing")

BALANCE_TTL_SECONDS = 60

_STORE_IF_NEWER = LuaScript("""
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^(%d+):'))
  if version and version >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'EX', ARGV[3])
return 1
""")


def balance_key(user_id: int) -> str:
    return f"balance:{user_id}"


def balance_store(user_id: int, balance: int, version: int) -> None:
    if redis_client() is None:
        return
    try:
        _STORE_IF_NEWER(keys=[balance_key(user_id)], args=[version, balance, BALANCE_TTL_SECONDS])
    except redis.RedisError as error:
        # The mirror only feeds a header and its entries expire: the request that moved money goes on.
        logger.warning("balance mirror not updated for account %s: %s", user_id, type(error).__name__)


def balance_forget(user_id: int) -> None:
    """Drop the account's entry (a balance sent ahead of a commit that then failed)."""
    client = redis_client()
    if client is None:
        return
    try:
        client.delete(balance_key(user_id))
    except redis.RedisError as error:
        logger.warning("balance mirror not dropped for account %s: %s", user_id, type(error).__name__)


@dataclass(frozen=True)
class BalanceMirror:
    """A balance a change just wrote, still to be mirrored."""

    user_id: int
    balance: int
    version: int

    def store_on_commit(self) -> None:
        if redis_client() is not None:  # without Redis nothing is mirrored: no callback for every request
            transaction.on_commit(lambda: balance_store(self.user_id, self.balance, self.version))

    def command(self) -> tuple:
        """The store as one command, to send in the round trip of another (flixly_site.shared.redis_commands)
        while the change's transaction still holds the wallet row: see the module's note."""
        value = f"{self.version}:{self.balance}"
        return ("SET", balance_key(self.user_id), value, "EX", BALANCE_TTL_SECONDS)


def balance_parse(raw: Any) -> int | None:
    """The balance in a stored "version:balance" value, or None when there is none."""
    if not raw:
        return None
    _, _, balance = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(":")
    return int(balance) if balance.lstrip("-").isdigit() else None
