"""Static files of the console: our own (``crm/admin_ui/static``) and third-party ones from
the npm registry, installed by the Makefile into ``node_modules`` (never committed).

Only the files listed in :data:`VENDOR` are served from ``node_modules``, under short names,
so the URL never exposes the folder's layout and nothing else in it is reachable.
"""

from __future__ import annotations

import os
from pathlib import Path

from litestar import Controller, Response, get
from litestar.params import FromPath

from crm.platform.errors import NotFound
from crm.platform.security import PUBLIC

OWN = Path(__file__).parent / "static"
# The project's node_modules (``CRM_ASSETS_DIR`` points elsewhere, e.g. in a container image).
NODE_MODULES = Path(os.environ.get("CRM_ASSETS_DIR") or Path(__file__).resolve().parents[2] / "node_modules")
VENDOR = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "pico.min.css": "@picocss/pico/css/pico.min.css",
    "qrcode.js": "qrcode-generator/dist/qrcode.js",
}
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# Versioned by the package lock (vendor) or the process start (own files): a day is plenty.
CACHE = "public, max-age=86400"


def _file_response(path: Path) -> Response[bytes]:
    if not path.is_file():
        raise NotFound("There is no such file.")
    return Response(
        path.read_bytes(),
        media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        headers={"Cache-Control": CACHE, "X-Content-Type-Options": "nosniff"},
    )


class AssetsController(Controller):
    path = "/static"
    include_in_schema = False

    @get("/vendor/{name:str}", opt=PUBLIC, sync_to_thread=False)
    def vendor(self, name: FromPath[str]) -> Response[bytes]:
        relative = VENDOR.get(name)
        if relative is None:
            raise NotFound("There is no such file.")
        return _file_response(NODE_MODULES / relative)

    @get("/console/{name:str}", opt=PUBLIC, sync_to_thread=False)
    def own(self, name: FromPath[str]) -> Response[bytes]:
        if "/" in name or name.startswith("."):
            raise NotFound("There is no such file.")
        return _file_response(OWN / name)


def missing_vendor_files() -> list[str]:
    """Vendor files not installed (``make`` installs them); the app warns at start."""
    return [name for name, relative in VENDOR.items() if not (NODE_MODULES / relative).is_file()]
