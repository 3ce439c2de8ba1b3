"""Mail goes out after commit: over real SMTP (an aiosmtpd server) with the tenant's sender,
or into the outbox folder when no SMTP server is configured — once, never for a rollback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from crm.cli import main
from crm.platform.mail import install_mail, list_outbox
from crm.platform.services import Services
from crm.platform.tenancy import scope_connection, tenant_scope
from crm.platform.timers import run_due
from crm.settings import MailSettings, Settings, SettingsError, load_settings
from crm.tenants.mail.outbox import queue_mail
from crm.tenants.mail.sending import send_outbox_message
from crm.tenants.mail.tables import OutboxMessage
from tests.conftest import SignedUpTenant, TenantFactory
from tests.fakes.smtp import FakeSmtp
from tests.integration.helpers import tenant_of


@pytest.fixture
def smtp(settings: Settings) -> Iterator[FakeSmtp]:
    """A fake SMTP server, made this process's mail transport for the test."""
    with FakeSmtp() as server:
        smtp_settings = load_settings(_env(settings, server.url)).mail.smtp
        install_mail(replace(settings, mail=replace(settings.mail, smtp=smtp_settings)))
        try:
            yield server
        finally:
            install_mail(settings)


@pytest.fixture
def outbox(settings: Settings, tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "outbox"
    install_mail(replace(settings, mail=replace(settings.mail, smtp=None, outbox_dir=folder)))
    try:
        yield folder
    finally:
        install_mail(settings)


def _env(settings: Settings, smtp_url: str) -> dict[str, str]:
    return {"CRM_DATA_DIR": str(settings.data_dir), "CRM_SECRET_KEY": "k" * 40, "CRM_SMTP_URL": smtp_url}


async def _unsent(company: SignedUpTenant) -> list[int]:
    async with tenant_scope(await tenant_of(company)):
        rows = await scope_connection().fetch("SELECT id FROM mail_outbox WHERE sent_at IS NULL")
    return [row["id"] for row in rows]


async def _drain(services: Services, *companies: SignedUpTenant) -> None:
    """Run due timers until the companies' mail is sent (the app's own runner may take some)."""
    deadline = time.monotonic() + 20
    while True:
        await run_due(services.db.pool, limit=50)
        pending = [message for company in companies for message in await _unsent(company)]
        if not pending:
            return
        assert time.monotonic() < deadline, f"mail {pending} was never sent"
        await asyncio.sleep(0.05)


async def _invite(http: httpx.AsyncClient, company: SignedUpTenant, email: str, locale: str = "en") -> None:
    response = await http.post(
        "/api/v1/users/invitations",
        json={"email": email, "name": "Anna Smirnova", "role": "manager", "locale": locale},
        headers=company.auth,
    )
    assert response.status_code == 201, response.text


async def test_invitation_arrives_over_smtp_with_the_tenants_sender(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services, smtp: FakeSmtp
) -> None:
    company, other = await make_tenant(), await make_tenant()
    changed = await http.patch(
        "/api/v1/settings/mail",
        json={"from_name": "Acme Sales", "from_address": "Sales@Acme.example"},
        headers=company.auth,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["from_address"] == "sales@acme.example" and changed.json()["transport"] == "smtp"
    bad = await http.patch("/api/v1/settings/mail", json={"from_address": "not an address"}, headers=company.auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "from_address"
    # The other company keeps the product's sender.
    assert (await http.get("/api/v1/settings/mail", headers=other.auth)).json()["from_name"] == "Relay CRM"

    await _invite(http, company, "anna@example.org", locale="ru")
    await _invite(http, other, "boris@example.org")
    await _drain(services, company, other)

    by_recipient = {item.recipients[0]: item for item in smtp.received}
    assert sorted(by_recipient) == ["anna@example.org", "boris@example.org"]
    anna = by_recipient["anna@example.org"].message
    assert anna["From"] == "Acme Sales <sales@acme.example>" and by_recipient["anna@example.org"].mail_from == (
        "sales@acme.example"
    )
    assert str(anna["Subject"]).startswith("Приглашение")
    assert "/invite/" in anna.get_body().get_content()  # type: ignore[union-attr]
    assert by_recipient["boris@example.org"].message["From"] == "Relay CRM <noreply@localhost>"
    assert anna["Message-ID"] != by_recipient["boris@example.org"].message["Message-ID"]


async def test_without_smtp_mail_lands_in_the_outbox_folder(
    make_tenant: TenantFactory,
    http: httpx.AsyncClient,
    services: Services,
    outbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    company, other = await make_tenant(), await make_tenant()
    await _invite(http, company, "vera@example.org")
    await _drain(services, company, other)
    files = list_outbox(outbox)
    assert [item.to for item in files] == ["vera@example.org"]
    assert "/invite/" in files[0].path.read_text()

    # `crm mail outbox` lists the folder under the data dir.
    monkeypatch.setenv("CRM_DATA_DIR", str(outbox.parent))
    monkeypatch.delenv("CRM_SMTP_URL", raising=False)
    capsys.readouterr()
    assert main(["mail", "outbox"]) == 0
    listed = capsys.readouterr().out
    assert "vera@example.org" in listed and "invited" in listed
    assert main(["mail", "outbox", "--show", "1"]) == 0
    assert "Message-ID:" in capsys.readouterr().out


async def test_a_rolled_back_transaction_sends_nothing(
    make_tenant: TenantFactory, services: Services, smtp: FakeSmtp
) -> None:
    company = await make_tenant()
    tenant = await tenant_of(company)
    with pytest.raises(RuntimeError):
        async with tenant_scope(tenant):
            await queue_mail(to="ghost@example.org", subject="never", body="never", kind="test")
            raise RuntimeError("the change fails after queueing its mail")
    await run_due(services.db.pool, limit=50)
    async with tenant_scope(tenant):
        assert await OutboxMessage.count() == 0
    timers = await services.db.pool.fetchval(
        "SELECT count(*) FROM platform.timers WHERE tenant_id = $1 AND kind = 'mail.send'", tenant.id
    )
    assert timers == 0
    assert smtp.received == []


async def test_running_the_handler_twice_sends_once(
    make_tenant: TenantFactory, services: Services, smtp: FakeSmtp
) -> None:
    company, other = await make_tenant(), await make_tenant()
    tenant = await tenant_of(company)
    # Written without its timer, so only this test runs the handler.
    async with tenant_scope(tenant):
        rows = await OutboxMessage.insert(
            OutboxMessage(to_address="once@example.org", subject="once", body="once", kind="test")
        ).returning(OutboxMessage.id)
    message_id = int(rows[0]["id"])
    # Side by side (the row lock makes one wait) and then once more.
    results = await asyncio.gather(send_outbox_message(tenant, message_id), send_outbox_message(tenant, message_id))
    assert sorted(results) == [False, True]
    assert await send_outbox_message(tenant, message_id) is False
    assert [item.recipients for item in smtp.received] == [("once@example.org",)]
    # The other company's scope has no such message: its handler finds nothing to send.
    assert await send_outbox_message(await tenant_of(other), message_id) is False
    assert len(smtp.received) == 1


async def test_smtp_login_and_a_password_that_never_prints(settings: Settings) -> None:
    with FakeSmtp(auth=("mailer", "p@ss:w/rd")) as server:
        url = f"smtp://mailer:p%40ss%3Aw%2Frd@127.0.0.1:{server.port}?starttls=none"
        mail_settings = load_settings(_env(settings, url)).mail
        assert mail_settings.smtp is not None and mail_settings.smtp.password is not None
        assert mail_settings.smtp.password.reveal() == "p@ss:w/rd"
        assert "p@ss" not in repr(mail_settings) and "p@ss" not in mail_settings.smtp.describe()
        from crm.platform.mail import Sender, build_message, mail_from_settings, send_message

        message = build_message(
            sender=Sender("Relay", "noreply@relay.example"),
            to="x@example.org",
            subject="s",
            text="t",
            message_id="<a@b>",
        )
        await send_message(mail_from_settings(replace(settings, mail=mail_settings)).transport, message)
        assert [item.recipients for item in server.received] == [("x@example.org",)]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://host", "must start with smtp:// or smtps://"),
        ("smtp://", "has no host"),
        ("smtp://host:99999", "invalid port"),
        ("smtp://host?tls=yes", "unknown options: tls"),
        ("smtps://host?starttls=required", "starttls does not apply"),
        ("smtp://host?starttls=maybe", "starttls must be one of"),
    ],
)
def test_bad_smtp_urls_name_the_variable(tmp_path: Path, url: str, problem: str) -> None:
    with pytest.raises(SettingsError, match="CRM_SMTP_URL") as error:
        load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_SMTP_URL": url.replace("host", "user:secret@host")})
    assert problem in str(error.value) and "secret" not in str(error.value)


def test_smtp_url_forms(tmp_path: Path) -> None:
    def parsed(url: str) -> MailSettings:
        return load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_SMTP_URL": url}).mail

    implicit = parsed("smtps://relay.example").smtp
    assert implicit is not None and (implicit.port, implicit.tls) == (465, "implicit")
    required = parsed("smtp://u:p@relay.example?starttls=required&timeout=5").smtp
    assert required is not None and (required.port, required.tls, required.timeout) == (587, "starttls", 5.0)
    unset = load_settings({"CRM_DATA_DIR": str(tmp_path)}).mail
    assert unset.smtp is None and unset.outbox_dir == tmp_path.resolve() / "outbox"
