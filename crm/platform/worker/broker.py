"""The Dramatiq broker named by ``CRM_BROKER_URL``.

``redis://`` → Redis, ``amqp://`` → RabbitMQ, unset → dramatiq-postgres on the application
database (its tables come with platform migration m0006), so the embedded default needs no
second server. The URL of the database is ``crm.platform.db.database_url(settings)`` — the
embedded server's when ``CRM_DATABASE_URL`` is unset.

The PostgreSQL broker commits once per message sent and once per message acknowledged, and
every one of those commits sends a NOTIFY. PostgreSQL serialises the commits of notifying
transactions on one lock, held while the commit record is flushed to disk, so with the
server's default ``synchronous_commit = on`` the broker moves at most one message per disk
flush, whatever the number of workers (bench/broker.py). Its connections therefore commit
asynchronously (``synchronous_commit = off`` for those sessions only; the application's own
transactions stay synchronous). What a server crash can then lose is the last fraction of a
second of sends and acknowledgements, and neither loses a job:

- a message lost after it was sent leaves its timers ``queued``; their queued lease runs
  out and the scheduler sends them again — late, never lost (as when the scheduler dies
  between its claim and the send);
- a lost acknowledgement makes the message come again, and ``timers.run`` ignores a timer
  that is not queued any more.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dramatiq import Broker

from crm.settings import SettingsError

POSTGRES_SCHEMA = "dramatiq"
# The broker's own connections, told apart from the application's in pg_stat_activity.
POSTGRES_APPLICATION_NAME = "relay-crm-broker"


def broker_kind(url: str | None) -> str:
    """``postgres``, ``redis`` or ``rabbitmq``; a SettingsError for any other scheme."""
    if not url:
        return "postgres"
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss", "unix"):
        return "redis"
    if scheme in ("amqp", "amqps"):
        return "rabbitmq"
    raise SettingsError(f"CRM_BROKER_URL must start with redis:// or amqp:// (or be unset), got {scheme}://")


def make_broker(url: str | None, database_url: str, *, namespace: str | None = None) -> Broker:
    """A broker for ``url`` (None: PostgreSQL on ``database_url``). ``namespace`` keeps the
    Redis keys of a test run apart from any other's."""
    kind = broker_kind(url)
    broker: Broker
    if kind == "redis":
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url, namespace=namespace or "dramatiq")
    elif kind == "rabbitmq":
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url)
    else:
        from dramatiq_postgres import PostgresBroker

        # No result backend: actors return nothing, the timer row records the outcome.
        broker = PostgresBroker(url=postgres_broker_url(database_url), results=False, schema=POSTGRES_SCHEMA)
    from crm.platform.worker.metrics import MessageMetrics

    broker.add_middleware(MessageMetrics())
    return broker


def postgres_broker_url(database_url: str) -> str:
    """``database_url`` for the broker's sessions: asynchronous commits (see the module's
    docstring) and an application name of their own; options already in the URL are kept."""
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    options = query.get("options", "")
    query["options"] = f"{options} -c synchronous_commit=off".strip()
    query.setdefault("application_name", POSTGRES_APPLICATION_NAME)
    return urlunsplit(parts._replace(query=urlencode(query)))
