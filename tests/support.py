"""Test support: a real PostgreSQL database per run and the app served over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import uvicorn
from litestar import Litestar

from crm.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def create_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def make_settings(data_dir: Path, **overrides: str) -> Settings:
    env = {
        "CRM_DATA_DIR": str(data_dir),
        "CRM_SECRET_KEY": "test-secret-" + "x" * 40,
        "CRM_LOG_LEVEL": "WARNING",
        # Tests send X-Forwarded-For to act as many clients; each address keeps the default limit.
        "CRM_SIGNUP_RATE_LIMIT": "10",
    }
    env.update(overrides)
    return load_settings(env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serve(app: Litestar) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on a free loopback port, in this event loop; yield its URL.

    Same loop as the tests, so the app and the tests share one engine (see create_app)."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )
    server = uvicorn.Server(config)
    # uvicorn must not take over the process's signal handlers inside the test run.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or task.done():
            raise RuntimeError("the test server did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def random_ip() -> str:
    return f"198.18.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def env_for_cli(database_url: str, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CRM_DATABASE_URL": database_url, "CRM_DATA_DIR": str(data_dir), "CRM_LOG_LEVEL": "WARNING"})
    return env


def wait_until_up(process: subprocess.Popen[str], base_url: str) -> str:
    """Read a `crm up` process's banner and wait until /ready answers 200; return the banner."""
    banner = ""
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while "password:" not in banner:
        line = process.stdout.readline()
        assert line or process.poll() is None, banner
        banner += line
        assert time.monotonic() < deadline, banner
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                return banner
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"never became ready:\n{banner}")
