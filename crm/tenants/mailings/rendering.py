"""Mailing templates: Jinja in a sandbox, over a fixed, documented set of variables.

A template may use only these variables (anything else fails when it is saved, with 422
naming the field and the variable):

    client.name, client.first_name, client.email, client.kind
    company.name
    responsible.name, responsible.email     (the client's responsible user; empty if none)
    unsubscribe_url

Templates are tenant input: they are rendered in ``SandboxedEnvironment`` (no attribute
starting with ``_``, no unsafe callables), with ``StrictUndefined`` (a typo is an error,
not an empty string), and a template is rendered once against sample values when saved,
so a failure shows up then, not in the middle of a send.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from crm.platform.errors import FieldError, InvalidInput

VARIABLES: dict[str, tuple[str, ...]] = {
    "client": ("name", "first_name", "email", "kind"),
    "company": ("name",),
    "responsible": ("name", "email"),
    "unsubscribe_url": (),
}
SAMPLE: dict[str, Any] = {
    "client": {"name": "Anna Smirnova", "first_name": "Anna", "email": "anna@example.org", "kind": "person"},
    "company": {"name": "Acme"},
    "responsible": {"name": "Olga Petrova", "email": "olga@acme.example"},
    "unsubscribe_url": "https://crm.example/unsubscribe/sample",
}
MAX_TEMPLATE = 100_000


def _environment(*, html: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=html, keep_trailing_newline=True)


_TEXT = _environment(html=False)
_HTML = _environment(html=True)


def _references(tree: nodes.Template) -> Iterator[str]:
    """Every ``variable.attribute`` (or ``variable["attribute"]``) the template reads."""
    for node in tree.find_all(nodes.Getattr):
        assert isinstance(node, nodes.Getattr)
        if isinstance(node.node, nodes.Name):
            yield f"{node.node.name}.{node.attr}"
    for item in tree.find_all(nodes.Getitem):
        assert isinstance(item, nodes.Getitem)
        if isinstance(item.node, nodes.Name) and isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str):
            yield f"{item.node.name}.{item.arg.value}"


def template_problems(field: str, source: str, *, html: bool = False) -> list[FieldError]:
    """What is wrong with one template field (empty when it is fine)."""
    if len(source) > MAX_TEMPLATE:
        return [FieldError(field, f"must be at most {MAX_TEMPLATE} characters")]
    environment = _HTML if html else _TEXT
    try:
        tree = environment.parse(source)
    except TemplateError as error:
        return [FieldError(field, f"is not a valid template: {error.message} (line {getattr(error, 'lineno', '?')})")]
    problems = []
    for name in sorted(meta.find_undeclared_variables(tree)):
        if name not in VARIABLES:
            problems.append(FieldError(field, f"uses the unknown variable {name!r}; known: {', '.join(VARIABLES)}"))
    for reference in sorted(set(_references(tree))):
        name, _, attribute = reference.partition(".")
        if name in VARIABLES and attribute not in VARIABLES[name]:
            known = ", ".join(f"{name}.{item}" for item in VARIABLES[name]) or "none"
            problems.append(FieldError(field, f"uses the unknown variable {reference!r}; known: {known}"))
    if problems:
        return problems
    try:
        environment.from_string(source).render(SAMPLE)
    except SecurityError as error:
        return [FieldError(field, f"reaches for something templates may not use: {error}")]
    except UndefinedError as error:
        return [FieldError(field, f"uses an undefined variable: {error.message}")]
    except (TemplateError, ArithmeticError, TypeError, ValueError, OverflowError) as error:
        return [FieldError(field, f"fails to render: {type(error).__name__}: {error}")]
    return []


def check_template(subject: str, text: str, html: str | None) -> None:
    """Raise 422 naming each field and variable that is wrong."""
    problems = [
        *template_problems("subject", subject),
        *template_problems("text", text),
        *(template_problems("html", html, html=True) if html is not None else []),
    ]
    if "\n" in subject or "\r" in subject:
        problems.append(FieldError("subject", "must be one line"))
    if problems:
        raise InvalidInput("The template has invalid fields.", errors=problems)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


class CompiledTemplate:
    """A saved template compiled once per send run and rendered per recipient."""

    def __init__(self, subject: str, text: str, html: str | None) -> None:
        self._subject = _TEXT.from_string(subject)
        self._text = _TEXT.from_string(text)
        self._html = _HTML.from_string(html) if html is not None else None

    def render(self, context: Mapping[str, Any]) -> Rendered:
        subject = " ".join(self._subject.render(context).split())[:300]
        return Rendered(
            subject, self._text.render(context), self._html.render(context) if self._html is not None else None
        )


def client_context(
    *,
    name: str,
    kind: str,
    email: str,
    company: str,
    responsible_name: str | None,
    responsible_email: str | None,
    unsubscribe_url: str,
) -> dict[str, Any]:
    """The variables for one recipient."""
    first_name = name.split()[0] if kind == "person" and name.split() else name
    return {
        "client": {"name": name, "first_name": first_name, "email": email, "kind": kind},
        "company": {"name": company},
        "responsible": {"name": responsible_name or "", "email": responsible_email or ""},
        "unsubscribe_url": unsubscribe_url,
    }
