"""Helpers for the console's tests: a browser-like client (cookies kept per path, forms
posted with the CSRF token the page carried)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import httpx

from tests.conftest import SignedUpTenant
from tests.support import random_ip

_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def csrf_in(page: str) -> str:
    match = _CSRF.search(page)
    assert match, "the page has no form token"
    return html.unescape(match.group(1))


@dataclass
class Browser:
    """One browser: its own cookie jar, its own address (the login rate limit is per address)."""

    client: httpx.AsyncClient

    @classmethod
    def open(cls, base_url: str) -> Browser:
        return cls(httpx.AsyncClient(base_url=base_url, timeout=30, headers={"X-Forwarded-For": random_ip()}))

    async def close(self) -> None:
        await self.client.aclose()

    async def get(self, path: str, **kwargs: object) -> httpx.Response:
        return await self.client.get(path, **kwargs)  # type: ignore[arg-type]

    async def submit(self, page_path: str, action: str, fields: dict[str, str]) -> httpx.Response:
        """Open ``page_path`` and post its form to ``action`` with ``fields`` and the page's token."""
        page = await self.client.get(page_path)
        assert page.status_code == 200, (page_path, page.status_code)
        return await self.client.post(action, data={"_csrf": csrf_in(page.text), **fields})

    async def sign_in(
        self, company: SignedUpTenant, *, email: str | None = None, password: str | None = None
    ) -> httpx.Response:
        return await self.submit(
            f"/{company.slug}/login",
            f"/{company.slug}/login",
            {"email": email or company.email, "password": password or company.password},
        )
