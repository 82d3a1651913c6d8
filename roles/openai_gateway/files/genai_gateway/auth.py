"""Who is calling, and may they: the client whose key hashes to a configured sha256 (compared in
constant time with every client's), and each client's request and token rates over a sliding
window of 60 seconds.

A request is admitted when the client's requests of the last 60 s are fewer than its
``requests_per_minute`` and the tokens its answers used in the last 60 s (prompt + completion,
counted when each answer ends) are fewer than its ``tokens_per_minute``; an admitted request
counts at once. A refusal says which rate and after how many whole seconds the oldest event
that keeps it over leaves the window (``Retry-After``).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .config import Client

WINDOW_SECONDS = 60.0


class Authenticator:
    """Finds the client of an ``Authorization`` header."""

    def __init__(self, clients: Iterable[Client]) -> None:
        self._clients = [(client.key_sha256, client) for client in clients]

    def client(self, header: str | None) -> Client | None:
        """The client whose key is ``Bearer <key>``; None for a missing, malformed or unknown
        key. The scheme is matched in any case, with one space before the key, as vLLM does."""
        if not header:
            return None
        scheme, space, key = header.partition(" ")
        if not space or scheme.lower() != "bearer" or not key or key != key.strip():
            return None
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
        found: Client | None = None
        for expected, client in self._clients:  # every client: no early exit to time
            if hmac.compare_digest(digest, expected):
                found = client
        return found


class Window:
    """Amounts spent at given times, forgetting those older than the window."""

    __slots__ = ("events", "total")

    def __init__(self) -> None:
        self.events: collections.deque[tuple[float, int]] = collections.deque()
        self.total = 0

    def prune(self, now: float) -> None:
        horizon = now - WINDOW_SECONDS
        events = self.events
        while events and events[0][0] <= horizon:
            self.total -= events.popleft()[1]

    def add(self, now: float, amount: int) -> None:
        self.events.append((now, amount))
        self.total += amount

    def retry_after(self, now: float, limit: int) -> int:
        """Whole seconds until the total is below ``limit`` again (at least 1)."""
        excess = self.total - limit + 1
        for when, amount in self.events:
            excess -= amount
            if excess <= 0:
                return max(1, math.ceil(when + WINDOW_SECONDS - now))
        return math.ceil(WINDOW_SECONDS)


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: ``kind`` is "requests" or "tokens" (OpenAI's error types)."""

    kind: str
    limit: int
    retry_after: int


class RateLimits:
    """The sliding windows of every client that has a rate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._requests: dict[str, Window] = {}
        self._tokens: dict[str, Window] = {}

    def admit(self, client: Client) -> Refusal | None:
        """Count the request if the client is within its rates, else say why not."""
        rpm, tpm = client.requests_per_minute, client.tokens_per_minute
        if rpm is None and tpm is None:
            return None
        now = self._clock()
        requests = None
        if rpm is not None:
            requests = self._requests.setdefault(client.name, Window())
            requests.prune(now)
            if len(requests.events) >= rpm:
                return Refusal("requests", rpm, requests.retry_after(now, rpm))
        if tpm is not None:
            tokens = self._tokens.setdefault(client.name, Window())
            tokens.prune(now)
            if tokens.total >= tpm:
                return Refusal("tokens", tpm, tokens.retry_after(now, tpm))
        if requests is not None:
            requests.add(now, 1)
        return None

    def spend(self, client: Client, tokens: int) -> None:
        """Count the tokens an answer used against the client's token rate."""
        if client.tokens_per_minute is None or tokens <= 0:
            return
        now = self._clock()
        window = self._tokens.setdefault(client.name, Window())
        window.prune(now)
        window.add(now, tokens)
