"""Who may read: loopback needs no login; any other address needs configured users (passwords from the env).

A request is let in by a session cookie (the login form), an ``Authorization: Bearer TOKEN`` header, or — for
feeds and the API, which feed readers and scripts fetch without cookies — ``?token=TOKEN`` in the URL.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.web.settings import ServeConfig, WebUser

# The user triage marks belong to when no login is asked (loopback).
LOCAL_USER = "local"
_ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


class AccessError(Exception):
    """``serve`` cannot start with this host and these users: the message is one line naming the key."""


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def feed_token(user: WebUser) -> str:
    """The user's token: configured, else derived from the password (stable, and changed with it)."""
    if user.token:
        return user.token
    return hmac.new(user.password.encode(), f"borderwatch-token:{user.name}".encode(), hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True)
class Access:
    """The policy in force: ``open`` (loopback) or users who must log in."""

    open: bool
    users: tuple[WebUser, ...] = ()
    session_days: float = 14.0

    @property
    def session_key(self) -> str:
        """Signs session cookies: derived from every user's secrets, so a login survives a restart and a
        password change ends the sessions signed before it."""
        h = hashlib.sha256(b"borderwatch-session")
        for u in self.users:
            h.update(f"\0{u.name}\0{u.password}\0{u.token or ''}".encode())
        return h.hexdigest()

    def check_password(self, name: str, password: str) -> str | None:
        """The user's name when ``password`` is theirs."""
        found = None
        for u in self.users:
            # Compared for every user, so the time taken does not tell which names exist.
            ok = hmac.compare_digest(u.password.encode(), password.encode())
            if ok and hmac.compare_digest(u.name.encode(), name.encode()):
                found = u.name
        return found

    def check_token(self, token: str) -> str | None:
        found = None
        for u in self.users:
            if hmac.compare_digest(feed_token(u).encode(), token.encode()):
                found = u.name
        return found

    def token_of(self, name: str) -> str | None:
        for u in self.users:
            if u.name == name:
                return feed_token(u)
        return None


def access_for(host: str, serve: ServeConfig, raw: Any, config_name: str) -> Access:
    """The policy for listening on ``host``; raises AccessError when it may not start.

    ``raw`` is the config file as written (before ``${VAR}`` expansion): a password must be a reference to
    the environment there, never the secret itself.
    """
    if is_loopback(host):
        return Access(open=True, users=tuple(serve.users), session_days=serve.session_days)
    if not serve.users:
        raise AccessError(
            f"--host {host} is not loopback: configure serve.users in {config_name} (passwords as ${{VAR}}) "
            "or listen on 127.0.0.1"
        )
    raw_users = ((raw or {}).get("serve") or {}).get("users") or [] if isinstance(raw, dict) else []
    for i, ru in enumerate(raw_users):
        if not isinstance(ru, dict):
            continue
        for key in ("password", "token"):
            value = ru.get(key)
            if value is not None and not (isinstance(value, str) and _ENV_REF.match(value.strip())):
                raise AccessError(
                    f"{config_name}: serve.users[{i}].{key}: must come from the environment as ${{VAR}}, "
                    "not be written in the file"
                )
    return Access(open=False, users=tuple(serve.users), session_days=serve.session_days)


def raw_config(path: str | Path | None) -> Any:
    """The config file as written, for ``access_for``'s check (None when it cannot be read: load_config
    has refused it already)."""
    from crawler.config import DEFAULT_CONFIG, PACKAGED_CONFIG
    from pipelines.yamltext import YamlProblem, parse_yaml

    p = Path(path) if path else Path(DEFAULT_CONFIG)
    if path is None and not p.exists():
        p = PACKAGED_CONFIG
    try:
        return parse_yaml(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YamlProblem):
        return None
