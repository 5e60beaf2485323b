"""How fast one client address may guess the token at `/login`, without locking anyone else out.

Issue 24 item 5: the limit was one counter for all clients, checked before the token, so
four bad logins a second from anywhere refused 29 of the operator's 30 correct ones. Now:

- Failed logins are counted per client address (IPv4 exactly, IPv6 by its /64, which one
  host usually has whole): another address's failures never slow or refuse anyone.
- An address with `per_minute` failures in the last minute is not refused: its attempts are
  checked one at a time, one every `60 / per_minute` seconds (3 s), each waiting its turn.
  A right token is then accepted as always; a guesser gets 20 guesses a minute per address
  however many connections it opens. At most `max_waiting` attempts of one address wait;
  one more is refused unchecked (429), so a flood cannot hold connections (the only case in
  which a right token is refused: sent from the very address that floods).
- A right token clears its address's count. Records are kept for `max_addresses` addresses,
  the least recently failed dropped first.

Client addresses are the TCP peer's: behind a reverse proxy every client is the proxy, and
shares one count (forwarded-for headers are not trusted: any client can write them).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

PER_MINUTE: Final = 20
MAX_WAITING: Final = 4
MAX_ADDRESSES: Final = 10_000
WINDOW_SECONDS: Final = 60.0


def address_key(host: str | None) -> str:
    """The address a count is kept for: IPv4 as is, IPv6 by its /64 network."""
    if not host:
        return "?"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass
class _Address:
    failures: deque[float] = field(default_factory=deque)
    next_turn: float = 0.0
    waiting: int = 0
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)


class LoginLimit:
    """Per-address failed-login counts and the turns of addresses over the limit."""

    def __init__(
        self,
        per_minute: int = PER_MINUTE,
        *,
        max_waiting: int = MAX_WAITING,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.max_waiting = max_waiting
        self.max_addresses = max_addresses
        self._clock = clock
        self._addresses: OrderedDict[str, _Address] = OrderedDict()

    @property
    def spacing(self) -> float:
        """Seconds between two checked attempts of an address over the limit."""
        return WINDOW_SECONDS / self.per_minute

    def failures(self, host: str | None) -> int:
        """Failed logins of this address in the last minute."""
        record = self._addresses.get(address_key(host))
        if record is None:
            return 0
        self._forget_old(record)
        return len(record.failures)

    async def turn(self, host: str | None) -> bool:
        """Wait until this address's attempt may be checked; False: too many already wait (refuse it)."""
        record = self._addresses.get(address_key(host))
        if record is None:
            return True
        self._forget_old(record)
        if len(record.failures) < self.per_minute:
            return True
        if record.waiting >= self.max_waiting:
            return False
        record.waiting += 1
        try:
            async with record.turn:
                wait = record.next_turn - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)
                record.next_turn = self._clock() + self.spacing
        finally:
            record.waiting -= 1
        return True

    def failed(self, host: str | None) -> int:
        """Count a failed login; the address's failures in the last minute."""
        key = address_key(host)
        record = self._addresses.pop(key, None) or _Address()
        self._addresses[key] = record  # most recently failed last
        record.failures.append(self._clock())
        self._forget_old(record)
        while len(self._addresses) > self.max_addresses:
            oldest, dropped = next(iter(self._addresses.items()))
            if dropped.waiting:  # never forget an address whose attempts are waiting their turn
                self._addresses.move_to_end(oldest)
                break
            del self._addresses[oldest]
        return len(record.failures)

    def succeeded(self, host: str | None) -> None:
        """A right token: its address starts afresh."""
        record = self._addresses.get(address_key(host))
        if record is not None and not record.waiting:
            del self._addresses[address_key(host)]
        elif record is not None:
            record.failures.clear()

    def _forget_old(self, record: _Address) -> None:
        cutoff = self._clock() - WINDOW_SECONDS
        while record.failures and record.failures[0] < cutoff:
            record.failures.popleft()
