"""Leases: which process may write a source (or run as the daemon) right now.

A lease is a row in ``locks`` with an owner (``host:pid``) and an expiry. Kept apart from the store so
the long-lived daemon can take leases without loading the story index and the topic rules.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete
from sqlalchemy.exc import IntegrityError

from pipelines.db import Database
from pipelines.models import Lock
from pipelines.timeutil import utcnow


def lease_owner(pid: int | None = None) -> str:
    """The owner string of a lease taken by process ``pid`` (default: this one) on this host."""
    return f"{socket.gethostname()}:{pid if pid is not None else os.getpid()}"


def owner_gone(owner: str) -> bool:
    """True when ``owner`` names a process of this host that no longer runs borderwatch.

    Another host's process cannot be seen from here: its lease is trusted until it expires.
    """
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ")
    except OSError:
        return True
    # A reused pid belongs to some other program.
    return b"crawler" not in cmdline and b"borderwatch" not in cmdline


class Leases:
    """Named leases in the ``locks`` table: a source being crawled (``source:<name>``), the daemon."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def acquire(self, name: str, ttl: timedelta, owner: str | None = None) -> bool:
        """Take (or renew) lease ``name`` unless another owner holds a live one.

        A lease whose owner is a process of this host that is gone (``kill -9``, a crash, a full disk)
        is taken over at once instead of blocking its source until it expires.
        """
        owner = owner or lease_owner()
        now = utcnow()
        try:
            with self.db.write() as s:
                lock = s.get(Lock, name, with_for_update=True)
                if (lock is not None and lock.owner != owner and lock.expires > now
                        and not owner_gone(lock.owner)):
                    return False
                if lock is None:
                    s.add(Lock(name=name, owner=owner, acquired=now, expires=now + ttl))
                else:
                    lock.owner, lock.acquired, lock.expires = owner, now, now + ttl
        except IntegrityError:  # PostgreSQL: another process inserted the same lease first
            return False
        return True

    def release(self, name: str, owner: str | None = None) -> None:
        release_lease(self.db, name, owner or lease_owner())

    def lock_holder(self, name: str) -> str | None:
        held = lease(self.db, name)
        return held[0] if held is not None and held[1] > utcnow() else None


def release_lease(db: Database, name: str, owner: str) -> bool:
    with db.write() as s:
        result: CursorResult[Any] = s.execute(delete(Lock).where(Lock.name == name, Lock.owner == owner))  # type: ignore[assignment]
        return bool(result.rowcount)


def lease(db: Database, name: str) -> tuple[str, datetime] | None:
    """The live holder of lease ``name`` and when it expires, or None."""
    with db.read() as s:
        lock = s.get(Lock, name)
        if lock is None:
            return None
        return lock.owner, lock.expires


def drop_stale_lease(db: Database, name: str, now: datetime) -> str | None:
    """Remove lease ``name`` if its holder is a dead process of this host; returns the old owner if so."""
    held = lease(db, name)
    if held is None or held[1] <= now or not owner_gone(held[0]):
        return None
    release_lease(db, name, held[0])
    return held[0]
