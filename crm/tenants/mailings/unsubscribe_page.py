"""The unsubscribe page in the reader's language: Russian or English.

The reader is not logged in and a client has no language of their own, so the page
follows what the reader's browser asks for (``Accept-Language``, by its q-values) when it
names Russian or English, else the company's language (company settings ``locale``, the
language its letters are most likely written in), else English.
"""

from __future__ import annotations

import html

from litestar import MediaType, Response

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "en"

_PAGES: dict[str, dict[str, tuple[str, str, str | None]]] = {
    "ru": {
        "confirm": (
            "Отписка от рассылки",
            "Больше не получать рассылки компании «{company}» на адрес {email}?",
            "Отписаться",
        ),
        "done": ("Вы отписались", "На адрес {email} больше не будут приходить рассылки компании «{company}».", None),
        "invalid": ("Ссылка недействительна", "Эта ссылка для отписки недействительна.", None),
    },
    "en": {
        "confirm": ("Unsubscribe", "Stop receiving mailings from {company} at {email}?", "Unsubscribe"),
        "done": ("Unsubscribed", "{email} will receive no more mailings from {company}.", None),
        "invalid": ("Link not valid", "This unsubscribe link is not valid.", None),
    },
}


def _weight(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


def browser_language(accept_language: str | None) -> str | None:
    """The supported language the ``Accept-Language`` header prefers (``ru-RU`` counts as
    ``ru``), or None when it names neither; ``*`` and ``q=0`` choose nothing."""
    best: tuple[float, int, str] | None = None
    for position, item in enumerate((accept_language or "")[:1000].split(",")):
        tag, *parameters = item.split(";")
        language = tag.strip().lower().split("-", 1)[0]
        weight = _weight(parameters)
        if language not in LANGUAGES or weight <= 0:
            continue
        # Highest weight wins; among equal weights, the one listed first.
        if best is None or (weight, -position) > (best[0], best[1]):
            best = (weight, -position, language)
    return best[2] if best else None


def page_language(accept_language: str | None, company_locale: str | None) -> str:
    chosen = browser_language(accept_language)
    if chosen is not None:
        return chosen
    return company_locale if company_locale in LANGUAGES else DEFAULT_LANGUAGE


def unsubscribe_page(
    kind: str, language: str, *, email: str = "", company: str = "", status: int = 200
) -> Response[str]:
    """``confirm`` (with the button that POSTs), ``done`` or ``invalid``, as an HTML page."""
    title, text, button = _PAGES[language][kind]
    body = html.escape(text.format(email=email, company=company))
    form = f'<form method="post"><button type="submit">{html.escape(button)}</button></form>' if button else ""
    page = (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{body}</p>{form}</body></html>"
    )
    # The language depends on the request's header: caches must keep the versions apart.
    headers = {"Content-Language": language, "Vary": "Accept-Language"}
    return Response(page, media_type=MediaType.HTML, status_code=status, headers=headers)
