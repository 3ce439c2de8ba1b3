"""``crm up`` on the embedded default: starts, serves the demo, stops on Ctrl-C, keeps data."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.support import free_port, wait_until_up


def _start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    env.update({"CRM_DATA_DIR": str(data_dir), "CRM_PORT": str(port), "CRM_LOG_LEVEL": "WARNING"})
    return subprocess.Popen(
        [sys.executable, "-m", "crm", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _stop(process: subprocess.Popen[str], signum: int) -> int:
    process.send_signal(signum)
    return process.wait(timeout=60)


def _postgres_stops_in(data_dir: Path, seconds: float = 30) -> bool:
    """Whether the embedded server under ``data_dir`` is gone within ``seconds`` (its last
    processes may outlive ``crm up`` by a moment on a busy machine)."""
    deadline = time.monotonic() + seconds
    while _postgres_running_in(data_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _postgres_running_in(data_dir: Path) -> bool:
    listing = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return any("postgres" in line and str(data_dir) in line for line in listing.splitlines())


def test_up_serves_the_demo_and_keeps_data_across_restarts() -> None:
    # Under the system temp dir: the embedded server's unprivileged user must reach it.
    data_dir = Path(tempfile.mkdtemp(prefix="relay-crm-up-"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"

    first = _start(data_dir, port)
    try:
        banner = wait_until_up(first, base_url)
        match = re.search(r"demo company: (\S+)\s+e-mail: (\S+)\s+password: (\S+)", banner)
        assert match, banner
        assert base_url in banner
        assert _postgres_running_in(data_dir)
        tenant, email, password = match.groups()
        token = httpx.post(
            f"{base_url}/api/v1/auth/token", json={"tenant": tenant, "email": email, "password": password}
        ).json()["access_token"]
        me = httpx.get(f"{base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["tenant"]["slug"] == "demo" and me["edition"]["key"] == "business"
        # The web console: the demo company signs in through its form; the npm assets are served.
        with httpx.Client(base_url=base_url) as browser:
            page = browser.get(f"/{tenant}/login")
            token_field = re.search(r'name="_csrf" value="([^"]+)"', page.text)
            assert page.status_code == 200 and token_field, page.status_code
            signed_in = browser.post(
                f"/{tenant}/login", data={"_csrf": token_field.group(1), "email": email, "password": password}
            )
            assert signed_in.status_code == 303, signed_in.text[:300]
            assert browser.get(f"/{tenant}/").status_code == 200
            for asset in ("/static/vendor/htmx.min.js", "/static/vendor/pico.min.css", "/static/console/console.css"):
                assert browser.get(asset).status_code == 200, asset
        signup = httpx.post(
            f"{base_url}/api/v1/signup",
            json={
                "company": "Kept Ltd",
                "slug": "kept-ltd",
                "edition": "start",
                "admin_email": "owner@kept.example",
                "admin_password": "kept across restarts",
                "admin_name": "Owner",
                "locale": "en",
                "timezone": "UTC",
            },
        )
        assert signup.status_code == 201, signup.text
    finally:
        assert _stop(first, signal.SIGINT) == 0
    assert "secret_key" in os.listdir(data_dir)
    assert _postgres_stops_in(data_dir)

    second = _start(data_dir, port)
    try:
        again = wait_until_up(second, base_url)
        assert f"password: {password}" in again
        login = httpx.post(
            f"{base_url}/api/v1/auth/token",
            json={
                "tenant": "kept-ltd",
                "email": "owner@kept.example",
                "password": "kept across restarts",
            },
        )
        assert login.status_code == 200
    finally:
        assert _stop(second, signal.SIGTERM) == 0
    assert _postgres_stops_in(data_dir)
