"""Who is calling, and may they: users with roles, API keys, and the role check
every route declares.

INTERFACE (stable; the implementation is being written):
- ``Role``: admin | operator | police | viewer.
- ``Principal``: the caller; ``actor`` is what the audit log records
  ("user:anh", "api_key:vms-bridge").
- ``require(*roles)``: a FastAPI dependency; use as
  ``principal: Annotated[Principal, Depends(require(*REVIEW))]``. 401 without valid
  credentials, 403 when the caller's role is not among ``roles``.
- Role groups: ``EVERYONE``, ``MEDIA`` (may watch footage), ``REVIEW`` (police
  review actions), ``ADMIN_ONLY``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    POLICE = "police"
    VIEWER = "viewer"


EVERYONE: tuple[Role, ...] = (Role.ADMIN, Role.OPERATOR, Role.POLICE, Role.VIEWER)
MEDIA: tuple[Role, ...] = (Role.ADMIN, Role.OPERATOR, Role.POLICE)
REVIEW: tuple[Role, ...] = (Role.ADMIN, Role.POLICE)
ADMIN_ONLY: tuple[Role, ...] = (Role.ADMIN,)


@dataclass(frozen=True, slots=True)
class Principal:
    actor: str  # "user:<username>" or "api_key:<name>"
    role: Role
    username: str | None = None  # None for API keys


def require(*roles: Role) -> Callable[..., Any]:
    raise NotImplementedError("being written")
