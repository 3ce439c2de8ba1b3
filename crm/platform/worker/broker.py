"""The Dramatiq broker named by ``CRM_BROKER_URL``.

``redis://`` → Redis, ``amqp://`` → RabbitMQ, unset → dramatiq-postgres on the application
database (its tables come with platform migration m0006), so the embedded default needs no
second server. The URL of the database is ``crm.platform.db.database_url(settings)`` — the
embedded server's when ``CRM_DATABASE_URL`` is unset.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from dramatiq import Broker

from crm.settings import SettingsError

POSTGRES_SCHEMA = "dramatiq"


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
        broker = PostgresBroker(url=database_url, results=False, schema=POSTGRES_SCHEMA)
    from crm.platform.worker.metrics import MessageMetrics

    broker.add_middleware(MessageMetrics())
    return broker
