"""Field errors of the admin pages' forms in the reader's language.

The services name the field and say what is wrong in English (the API's problem document);
a page shows its own words next to the field instead, chosen by the field and, where one
field can fail in several ways, by the service's detail.
"""

from __future__ import annotations

from collections.abc import Mapping

from crm.admin_ui.texts import Texts
from crm.platform.errors import CrmError


def form_errors(texts: Texts, problem: CrmError, messages: Mapping[str, str]) -> dict[str, str]:
    """``{field: message}`` for the form: ``messages`` maps ``"field"`` or
    ``"field:detail prefix"`` to a text key; any other field gets the generic message.
    Indexed fields (``roles.1``) count as their list (``roles``)."""
    shown: dict[str, str] = {}
    for error in problem.errors:
        field = error.field
        base, _, rest = field.partition(".")
        if rest.isdigit():
            field = base
        key = next(
            (
                text
                for pattern, text in messages.items()
                if ":" in pattern
                and pattern.split(":", 1)[0] == field
                and error.detail.startswith(pattern.split(":", 1)[1])
            ),
            messages.get(field, "admin_users.error.field"),
        )
        shown.setdefault(field, texts(key))
    return shown
