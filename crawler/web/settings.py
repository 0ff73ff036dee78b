"""The configuration of ``borderwatch serve``: who may log in (``serve:``). Saved searches (``searches:``) are
``crawler.config.SavedSearch``.

Declared here, composed into ``crawler.config.Config`` like every other part, each key with its help line.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebUser(_Strict):
    name: str = Field(description="The login name.")
    password: str = Field(min_length=8, description="The password: `${VAR}` from the environment, never in the file.")
    token: str | None = Field(
        None, min_length=16,
        description="The token for feeds and the API (`?token=` or `Authorization: Bearer`); `${VAR}`. "
                    "Default: derived from the password.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{v!r} is not a valid user name (lowercase letters, digits, '-', '_', '.')")
        return v


class ServeConfig(_Strict):
    users: list[WebUser] = Field(
        default_factory=list,
        description="Who may log in when `serve` listens beyond loopback (required then; passwords from `${VAR}`).",
    )
    session_days: float = Field(14.0, gt=0, le=365, description="Days a login lasts (the session cookie's age).")

    @field_validator("users")
    @classmethod
    def _unique(cls, v: list[WebUser]) -> list[WebUser]:
        seen: set[str] = set()
        for u in v:
            if u.name in seen:
                raise ValueError(f"duplicate user name {u.name!r}")
            seen.add(u.name)
        return v
