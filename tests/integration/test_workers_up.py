"""``crm up`` on the PostgreSQL broker: the web app, a worker and the scheduler as real
processes; an import started over the API and a task reminder are run by the worker;
SIGTERM stops them all.

The database is a fresh one on the test server (``CRM_DATABASE_URL``, or the embedded
server of the test run), so ``crm up`` migrates it — including the broker's tables."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, create_database, drop_database, free_port, wait_until_up, with_database


@pytest.fixture
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    name = f"crm_test_up_{secrets.token_hex(4)}"
    await create_database(server_url, name)
    try:
        yield with_database(server_url, name)
    finally:
        await drop_database(server_url, name)


def _children(pid: int) -> list[int]:
    listing = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in listing.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")


def test_crm_up_runs_jobs_on_its_worker_and_stops_cleanly(fresh_database: str, tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    env.update(
        {
            "CRM_DATABASE_URL": fresh_database,
            "CRM_DATA_DIR": str(tmp_path / "data"),
            "CRM_PORT": str(port),
            "CRM_LOG_LEVEL": "WARNING",
            "CRM_WORKER_METRICS_PORT": str(metrics_port),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "crm", "up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = wait_until_up(process, base_url)
        match = re.search(r"demo company: (\S+)\s+e-mail: (\S+)\s+password: (\S+)", banner)
        assert match, banner
        tenant, email, password = match.groups()
        with httpx.Client(base_url=base_url, timeout=30) as http:
            token = http.post("/api/v1/auth/token", json={"tenant": tenant, "email": email, "password": password})
            auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
            other = _sign_up_other(http)

            csv = "name,phone\nВоркер Один,+79001110001\nВоркер Два,+79001110002\n".encode()
            started = http.post("/api/v1/imports", headers=auth, files={"file": ("c.csv", csv, "text/csv")})
            assert started.status_code == 202, started.text
            job = _finished(http, auth, started.json()["id"])
            assert (job["status"], job["created_rows"]) == ("done", 2)

            found = http.get("/api/v1/search", params={"q": "Воркер"}, headers=auth).json()["items"]
            assert len(found) == 2
            assert http.get("/api/v1/search", params={"q": "Воркер"}, headers=other).json()["items"] == []

            # A task reminder: queued with the task, delivered by the worker at its moment.
            always = {"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "23:59"}  # never quiet hours
            assert http.patch("/api/v1/me", json={"working_hours": always}, headers=auth).status_code == 200
            due = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
            task = http.post(
                "/api/v1/tasks", json={"title": "Call back", "due_at": due, "remind_before_minutes": [0]}, headers=auth
            )
            assert task.status_code == 201, task.text
            reminders = _notified(http, auth)
            assert [(item["kind"], item["entity_id"]) for item in reminders] == [("task_reminder", task.json()["id"])]
            assert http.get("/api/v1/notifications", headers=other).json()["items"] == []

        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert 'crm_timers_run_total{kind="imports.run",outcome="done"} 1.0' in metrics
        assert 'crm_timers_run_total{kind="reminders.due",outcome="done"} 1.0' in metrics
        children = _children(process.pid)
        assert len(children) == 2  # worker and scheduler
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while any(_alive(child) for child in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(child) for child in children)


def _sign_up_other(http: httpx.Client) -> dict[str, str]:
    body = {
        "company": "Other Ltd",
        "slug": "other-ltd",
        "edition": "business",
        "admin_email": "owner@other.example",
        "admin_password": "other company password",
        "admin_name": "Owner",
        "locale": "en",
        "timezone": "UTC",
    }
    assert http.post("/api/v1/signup", json=body).status_code == 201
    token = http.post(
        "/api/v1/auth/token",
        json={"tenant": "other-ltd", "email": body["admin_email"], "password": body["admin_password"]},
    )
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def _notified(http: httpx.Client, auth: dict[str, str]) -> list[dict[str, object]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items: list[dict[str, object]] = http.get("/api/v1/notifications", headers=auth).json()["items"]
        if items:
            return items
        time.sleep(0.2)
    raise AssertionError("the reminder was not delivered by the worker")


def _finished(http: httpx.Client, auth: dict[str, str], import_id: int) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, object] = http.get(f"/api/v1/imports/{import_id}", headers=auth).json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"import {import_id} was not run by the worker")
