"""A 100,000-recipient mailing rendered and handed to a local SMTP sink, beside a bare
aiosmtplib loop sending the same messages in the same run.

    CRM_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.mailing [--recipients N]

The sink is aiosmtpd in a process of its own (counting what it accepts). The mailing runs
exactly what the ``mailings.send`` timer runs (``run_mailing``): the segment evaluated, one
delivery row per recipient, claim / stage / mark / commit-and-release per batch of
``--lanes`` SMTP connections. The baseline renders nothing and records nothing: the same
messages (built beforehand) sent by a bare aiosmtplib loop over the same number of
connections (``SMTP.sendmail`` of the flattened bytes). Goal: the mailing under 120 s on 2
cores.

The mailing's time is split into phases by timing the functions each batch goes through
(wrapped here, not in the product): rendering and building the letters, staging them and
marking them sent (SMTP up to the final "." on every lane, one UPDATE), releasing (COMMIT,
the dots, the servers' answers), and the rest — the claim queries and the loop itself.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiosmtplib

from bench.common import bench_database, open_bench_services, server_version
from bench.crm_data import provision
from crm.platform.mail import Sender, build_message, install_mail, message_bytes
from crm.platform.tenancy import scope_connection, tenant_scope
from crm.tenants.mailings import delivery, sending
from crm.tenants.mailings.rendering import CompiledTemplate, client_context
from crm.tenants.mailings.sending import LANES, run_mailing
from tests.support import free_port

SUBJECT = "Весеннее предложение для {{ client.first_name }}"
TEXT = (
    "Здравствуйте, {{ client.name }}!\n\n{{ responsible.name or 'Ваш менеджер' }} из {{ company.name }} "
    "подготовил(а) для вас весеннее предложение.\n\nОтписаться: {{ unsubscribe_url }}\n"
)


def _sink(port: int, counter: Any, ready: Any) -> None:
    """An SMTP server that accepts and counts (runs in its own process)."""
    from aiosmtpd.smtp import SMTP

    class Count:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with counter.get_lock():
                counter.value += 1
            return "250 OK"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Count(), hostname="sink"), "127.0.0.1", port)
        ready.set()
        await server.serve_forever()

    asyncio.run(serve())


async def _bare_loop(port: int, messages: list[tuple[str, bytes]], lanes: int) -> float:
    queue = iter(messages)

    async def lane() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        for recipient, raw in queue:  # the lanes share one iterator: each message is sent once
            await client.sendmail("noreply@localhost", [recipient], raw)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(lanes)))
    return time.perf_counter() - started


PHASES: dict[str, float] = {"render and build": 0.0, "stage and mark": 0.0, "release and answers": 0.0}


def _timed_phases() -> None:
    """Wrap the functions of a batch so their wall time adds up per phase."""
    build, deliver, release = sending.build_letter, sending.deliver, delivery._release_and_confirm

    @functools.wraps(build)
    def timed_build(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return build(*args)
        finally:
            PHASES["render and build"] += time.perf_counter() - started

    def timed(name: str, function: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(function)
        async def wrapper(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return await function(*args)
            finally:
                PHASES[name] += time.perf_counter() - started

        return wrapper

    sending.build_letter = timed_build  # type: ignore[assignment]
    sending.deliver = timed("stage and mark", deliver)  # type: ignore[assignment]
    delivery._release_and_confirm = timed("release and answers", release)  # type: ignore[assignment]


async def main(recipients: int, lanes: int) -> None:
    port = free_port()
    context = multiprocessing.get_context("spawn")
    counter, ready = context.Value("q", 0), context.Event()
    sink = context.Process(target=_sink, args=(port, counter, ready), daemon=True)
    sink.start()
    assert ready.wait(20), "the SMTP sink did not start"
    try:
        async with bench_database() as database:
            services = await open_bench_services(database, pool_max=lanes + 4)
            settings = database.settings()
            install_mail(replace(settings, mail=replace(settings.mail, smtp=_smtp(port))))
            print(f"PostgreSQL {await server_version(services.db.pool)}; {recipients:,} recipients, {lanes} lanes")
            tenant, admin = await provision(services, "enterprise", "Бенч Рассылки")
            async with tenant_scope(tenant):
                connection = scope_connection()
                await connection.execute(
                    "INSERT INTO clients (kind, name, phones, emails, tags, status, responsible_id)"
                    " SELECT 'person', 'Клиент Номер ' || g, '{}', ARRAY['r' || g || '@example.org'], '{}', 'client',"
                    " CASE WHEN g % 2 = 0 THEN $2::int END FROM generate_series(1, $1) g",
                    recipients,
                    admin.user_id,
                )
                await connection.execute(
                    "INSERT INTO tenant_settings (key, value) VALUES ('mail', '{\"rate_per_minute\": 100000}')"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                )
                mailing_id = await connection.fetchval(
                    "WITH s AS (INSERT INTO mailing_segments (name, filters) VALUES ('all', '{}') RETURNING id),"
                    " t AS (INSERT INTO mailing_templates (name, subject, text) VALUES ('spring', $1, $2) RETURNING id)"
                    " INSERT INTO mailings (name, segment_id, template_id, state, scheduled_at, author_id)"
                    " SELECT 'spring', s.id, t.id, 'scheduled', now(), $3 FROM s, t RETURNING id",
                    SUBJECT,
                    TEXT,
                    admin.user_id,
                )
            await services.db.pool.execute("VACUUM ANALYZE")

            _timed_phases()
            started = time.perf_counter()
            state = await run_mailing(tenant, mailing_id, services.db.pool, lanes=lanes)
            mailing_seconds = time.perf_counter() - started
            # "stage and mark" was timed around the whole batch delivery: take the release out.
            PHASES["stage and mark"] -= PHASES["release and answers"]
            PHASES["claims and the loop"] = mailing_seconds - sum(PHASES.values())
            sent_by_mailing = counter.value
            assert state == "sent" and sent_by_mailing == recipients, (state, sent_by_mailing)
            print(f"mailing: {mailing_seconds:.1f} s, {recipients / mailing_seconds:,.0f} messages/s", flush=True)

            # The baseline: the same letters, built beforehand, over a bare aiosmtplib loop.
            template = CompiledTemplate(SUBJECT, TEXT, None)
            sender = Sender("Relay CRM", "noreply@localhost")
            prepared = []
            for number in range(1, recipients + 1):
                rendered = template.render(
                    client_context(name=f"Клиент Номер {number}", kind="person", email=f"r{number}@example.org",
                                   company="Бенч Рассылки", responsible_name=None, responsible_email=None,
                                   unsubscribe_url="http://127.0.0.1:8000/unsubscribe/x")
                )  # fmt: skip
                # Kept as bytes: 100,000 message objects would not fit a small machine's memory.
                message = build_message(
                    sender=sender,
                    to=f"r{number}@example.org",
                    subject=rendered.subject,
                    text=rendered.text,
                    message_id=f"<bench.{number}@localhost>",
                    headers={"List-Unsubscribe": "<http://127.0.0.1:8000/unsubscribe/x>"},
                )
                prepared.append((f"r{number}@example.org", message_bytes(message)))  # fmt: skip
            bare_seconds = await _bare_loop(port, prepared, lanes)
            assert counter.value == 2 * recipients, counter.value
            await services.db.close()
    finally:
        sink.kill()

    print(f"{'':34}{'seconds':>10}{'messages/s':>12}")
    print(f"{'mailing (run_mailing)':34}{mailing_seconds:>10.1f}{recipients / mailing_seconds:>12,.0f}")
    print(f"{'bare aiosmtplib loop':34}{bare_seconds:>10.1f}{recipients / bare_seconds:>12,.0f}")
    print("mailing phases: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in PHASES.items()))
    print(f"mailing / bare time ratio: {mailing_seconds / bare_seconds:.2f}; goal < 120 s: "
          f"{'met' if mailing_seconds < 120 else 'NOT met'}")  # fmt: skip


def _smtp(port: int) -> Any:
    from crm.settings import load_settings

    smtp = load_settings({"CRM_DATA_DIR": "/tmp", "CRM_SECRET_KEY": "b" * 40,  # noqa: S108
                          "CRM_SMTP_URL": f"smtp://127.0.0.1:{port}?starttls=none"}).mail.smtp  # fmt: skip
    return smtp


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--lanes", type=int, default=LANES)
    args = parser.parse_args()
    asyncio.run(main(args.recipients, args.lanes))
