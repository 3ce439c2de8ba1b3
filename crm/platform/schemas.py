"""Request and response bodies of the platform endpoints (they document the OpenAPI)."""

from __future__ import annotations

import msgspec

from crm.tenants.users.schemas import UserRead


class TokenRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    tenant: str
    email: str
    password: str
    name: str = "api"
    # The current code of the user's authenticator app, when they turned two-factor login on.
    totp_code: str | None = None


class TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


class SignedUpTenant(msgspec.Struct, kw_only=True):
    slug: str
    edition: str
    status: str


class SignupResponse(msgspec.Struct, kw_only=True):
    tenant: SignedUpTenant


class TenantRead(msgspec.Struct, kw_only=True):
    slug: str
    name: str
    edition: str
    status: str
    locale: str
    timezone: str


class EditionNames(msgspec.Struct, kw_only=True):
    ru: str
    en: str


class EditionSummary(msgspec.Struct, kw_only=True):
    key: str
    names: EditionNames
    modules: list[str]
    # None: unlimited.
    limits: dict[str, int | None]


class MeResponse(msgspec.Struct, kw_only=True):
    user: UserRead
    tenant: TenantRead
    edition: EditionSummary
