"""Edition files: the shipped ones load, and every kind of mistake names its file, field and reason."""

from __future__ import annotations

import pickle
from pathlib import Path

import msgspec
import pytest

from crm.platform.editions import (
    ACTIONS,
    ENTITIES,
    KNOWN_MODULES,
    EditionError,
    Rights,
    check_edition_file,
    load_edition_file,
    load_editions,
)

SHIPPED = ("start", "business", "enterprise", "realty")

# A small but complete edition; each broken case below changes one thing in it.
MINIMAL = """\
key = "minimal"
names = { ru = "Минимальная", en = "Minimal" }
modules = ["clients", "deals", "custom_fields"]

[billing]
stripe_price_ids = { monthly = "price_minimal_monthly" }
public = true

[limits]
users = 3
mailings_per_month = 0
running_processes = 0
api_requests_per_minute = 0

[[defaults.pipelines]]
key = "sales"
names = { ru = "Продажи", en = "Sales" }
stages = [
    { key = "new", names = { ru = "Новая", en = "New" }, probability = 10 },
    { key = "offer", names = { ru = "Предложение", en = "Offer" }, probability = 50 },
    { key = "won", names = { ru = "Успех", en = "Won" }, probability = 100, kind = "won" },
    { key = "lost", names = { ru = "Отказ", en = "Lost" }, probability = 0, kind = "lost" },
]

[[defaults.roles]]
key = "admin"
names = { ru = "Администратор", en = "Administrator" }
[defaults.roles.rights]
users = { read = "all", create = "all", update = "all", delete = "all", export = "all", assign = "all" }
roles = { read = "all", create = "all", update = "all", delete = "all", export = "all", assign = "all" }
settings = { read = "all", create = "all", update = "all", delete = "all", export = "all", assign = "all" }
clients = { read = "all" }

[[defaults.roles]]
key = "head_of_sales"
names = { ru = "Руководитель", en = "Head of sales" }

[[defaults.roles]]
key = "manager"
names = { ru = "Менеджер", en = "Manager" }

[[defaults.roles]]
key = "operator"
names = { ru = "Оператор", en = "Operator" }

[[defaults.custom_fields]]
entity = "client"
key = "source"
names = { ru = "Источник", en = "Source" }
type = "choice"
choices = [{ key = "website", names = { ru = "Сайт", en = "Website" } }]

# end
"""

PIPELINE = MINIMAL[MINIMAL.index("[[defaults.pipelines]]") : MINIMAL.index("[[defaults.roles]]")]
WON_STAGE = '    { key = "won", names = { ru = "Успех", en = "Won" }, probability = 100, kind = "won" },\n'
CHOICES = 'choices = [{ key = "website", names = { ru = "Сайт", en = "Website" } }]\n'
ADMIN_USERS = 'users = { read = "all", create = "all", update = "all", delete = "all", export = "all", assign = "all" }'
PROCESS_TEMPLATE = """\
[[defaults.process_templates]]
key = "welcome"
names = { ru = "Приветствие", en = "Welcome" }
description = { ru = "Письмо новому клиенту.", en = "Mail to a new client." }
trigger = "client.created"
action = "send_mail"
module = "clients"
"""

# (case id, file name, text to replace, replacement, expected field, fragment of the reason)
BROKEN_FILES = [
    ("limits wrong type", "minimal.toml", "users = 3", 'users = "three"', "limits.users", "Expected `int"),
    ("limits negative", "minimal.toml", "users = 3", "users = -1", "limits.users", "leave the limit out"),
    ("limits misspelt", "minimal.toml", "users = 3", "user = 3", "limits.user", "unknown field"),
    (
        "unknown module",
        "minimal.toml",
        '"custom_fields"]',
        '"custom_fields", "telepathy"]',
        "modules[3]",
        "'telepathy'; expected one of: clients, deals",
    ),
    (
        "duplicate module",
        "minimal.toml",
        '"custom_fields"]',
        '"custom_fields", "deals"]',
        "modules[3]",
        "duplicate",
    ),
    ("clients module missing", "minimal.toml", '["clients", ', "[", "modules", "'clients' is required"),
    (
        "missing ru name",
        "minimal.toml",
        'names = { ru = "Минимальная", en = "Minimal" }',
        'names = { en = "Minimal" }',
        "names.ru",
        "required field is missing",
    ),
    ("blank en name", "minimal.toml", 'en = "Minimal"', 'en = "  "', "names.en", "non-empty"),
    ("key not matching file name", "other_name.toml", "", "", "key", "must equal the file name 'other_name'"),
    ("key pattern", "Minimal.toml", 'key = "minimal"', 'key = "Minimal"', "key", "matching regex"),
    ("toml syntax error", "minimal.toml", 'key = "minimal"', 'key = "minimal', "(file)", "TOML syntax error"),
    (
        "public without prices",
        "minimal.toml",
        '{ monthly = "price_minimal_monthly" }',
        "{}",
        "billing.stripe_price_ids",
        "needs at least one price id",
    ),
    (
        "bad price id",
        "minimal.toml",
        '"price_minimal_monthly"',
        '"prod_minimal"',
        "billing.stripe_price_ids.monthly",
        "matching regex",
    ),
    (
        "limit of a missing module",
        "minimal.toml",
        "mailings_per_month = 0",
        "mailings_per_month = 100",
        "limits.mailings_per_month",
        "module 'mailings' is not enabled",
    ),
    (
        "pipeline without won stage",
        "minimal.toml",
        WON_STAGE,
        "",
        "defaults.pipelines[0].stages",
        "exactly one won stage, found 0",
    ),
    (
        "unknown stage kind",
        "minimal.toml",
        'kind = "won"',
        'kind = "done"',
        "defaults.pipelines[0].stages[2].kind",
        "expected one of: open, won, lost",
    ),
    (
        "won stage below 100",
        "minimal.toml",
        'probability = 100, kind = "won"',
        'probability = 90, kind = "won"',
        "defaults.pipelines[0].stages[2].probability",
        "probability 100",
    ),
    (
        "duplicate stage key",
        "minimal.toml",
        '{ key = "offer"',
        '{ key = "new"',
        "defaults.pipelines[0].stages[1].key",
        "duplicate key 'new'",
    ),
    (
        "deals without pipelines",
        "minimal.toml",
        PIPELINE,
        "",
        "defaults.pipelines",
        "at least one entry is required because module 'deals' is enabled",
    ),
    (
        "unknown top-level table",
        "minimal.toml",
        "# end\n",
        "[pricing]\nmonthly = 10\n",
        "pricing",
        "unknown field",
    ),
    (
        "unknown right scope",
        "minimal.toml",
        'clients = { read = "all" }',
        'clients = { read = "everyone" }',
        "defaults.roles[0].rights.clients.read",
        "'everyone'; expected one of: none, own, department, all",
    ),
    (
        "unknown right entity",
        "minimal.toml",
        "clients = { read",
        "customers = { read",
        "defaults.roles[0].rights.customers",
        "unknown field",
    ),
    (
        "admin without full rights on users",
        "minimal.toml",
        ADMIN_USERS,
        ADMIN_USERS.replace('delete = "all"', 'delete = "own"'),
        "defaults.roles[0].rights.users.delete",
        "must have scope 'all'",
    ),
    (
        "required role missing",
        "minimal.toml",
        'key = "operator"',
        'key = "dispatcher"',
        "defaults.roles",
        "role 'operator' is required",
    ),
    (
        "choice field without choices",
        "minimal.toml",
        CHOICES,
        "",
        "defaults.custom_fields[0].choices",
        "needs at least one choice",
    ),
    (
        "text field with choices",
        "minimal.toml",
        'type = "choice"',
        'type = "text"',
        "defaults.custom_fields[0].choices",
        "must be empty",
    ),
    (
        "custom fields without the module",
        "minimal.toml",
        '"deals", "custom_fields"]',
        '"deals"]',
        "defaults.custom_fields",
        "module 'custom_fields' is not enabled",
    ),
    (
        "process templates without the module",
        "minimal.toml",
        "# end\n",
        PROCESS_TEMPLATE,
        "defaults.process_templates",
        "module 'processes' is not enabled",
    ),
    (
        "label without ru",
        "minimal.toml",
        "# end\n",
        '[defaults.labels]\nclient = { ru = "Покупатель", en = "Buyer" }\ndeal = { en = "Purchase" }\n',
        "defaults.labels.deal.ru",
        "required field is missing",
    ),
    (
        "label key with a space",
        "minimal.toml",
        "# end\n",
        '[defaults.labels]\nclient = { ru = "К", en = "C" }\n"big deal" = { ru = "С", en = "D" }\n',
        "defaults.labels['big deal']",
        "invalid key 'big deal'",
    ),
    (
        "label not a table",
        "minimal.toml",
        "# end\n",
        "[defaults.labels]\nclient = 5\n",
        "defaults.labels.client",
        "Expected `table`, got `int`",
    ),
    (
        "custom roles setting without the module",
        "minimal.toml",
        "# end\n",
        "[defaults.settings]\ncustom_roles_allowed = true\n",
        "defaults.settings.custom_roles_allowed",
        "needs module 'custom_roles'",
    ),
]


def write_edition(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_edition_is_valid(tmp_path: Path) -> None:
    # Every broken case is this file with one change, so the change alone must be the cause.
    path = write_edition(tmp_path, "minimal.toml", MINIMAL)
    assert check_edition_file(path) == []
    edition = load_edition_file(path)
    assert edition.key == "minimal"
    assert edition.limits.users == 3
    assert edition.limits.clients is None  # left out: unlimited
    assert edition.defaults.pipelines[0].stages[0].kind == "open"  # the default kind


@pytest.mark.parametrize(
    ("file_name", "old", "new", "field", "reason"),
    [case[1:] for case in BROKEN_FILES],
    ids=[case[0] for case in BROKEN_FILES],
)
def test_broken_file_names_field_and_reason(
    tmp_path: Path, file_name: str, old: str, new: str, field: str, reason: str
) -> None:
    # Each case must change something: the text, or (for the key case) the file name.
    assert old in MINIMAL and (old != new or file_name != "minimal.toml")
    path = write_edition(tmp_path, file_name, MINIMAL.replace(old, new, 1))

    with pytest.raises(EditionError) as raised:
        load_edition_file(path)

    error = raised.value
    assert (error.file, error.field) == (str(path), field)
    assert reason in error.reason
    assert str(error) == f"{path}: {field}: {error.reason}"
    assert [(problem.field, problem.reason) for problem in check_edition_file(path)][:1] == [
        (error.field, error.reason)
    ]


def test_check_lists_every_cross_field_problem(tmp_path: Path) -> None:
    text = MINIMAL.replace(WON_STAGE, "").replace('key = "operator"', 'key = "dispatcher"').replace(CHOICES, "")
    path = write_edition(tmp_path, "minimal.toml", text)

    fields = [error.field for error in check_edition_file(path)]

    assert fields == ["defaults.pipelines[0].stages", "defaults.roles", "defaults.custom_fields[0].choices"]


def test_unreadable_file_is_reported_as_file_error(tmp_path: Path) -> None:
    path = tmp_path / "minimal.toml"
    path.write_bytes(b'key = "\xff"\n')

    [error] = check_edition_file(path)

    assert (error.field, error.reason.split(":")[0]) == ("(file)", "not UTF-8 text")


def test_edition_error_survives_pickling() -> None:
    # Errors cross process boundaries (workers, multiprocessing) with their fields intact.
    error = pickle.loads(pickle.dumps(EditionError("a.toml", "limits.users", "bad")))  # noqa: S301
    assert (error.file, error.field, error.reason) == ("a.toml", "limits.users", "bad")


def test_all_shipped_editions_load() -> None:
    editions = load_editions()

    assert list(editions) == list(SHIPPED)
    shipped_directory = Path(__file__).resolve().parents[2] / "crm" / "platform" / "editions"
    for key in SHIPPED:
        assert check_edition_file(shipped_directory / f"{key}.toml") == []
        assert editions.get(key) is editions[key]
    assert editions.get("platinum") is None


def test_shipped_editions_have_the_agreed_modules_and_limits() -> None:
    editions = load_editions()
    start, business, enterprise = editions["start"], editions["business"], editions["enterprise"]

    assert set(start.modules) == {"clients", "deals", "tasks", "calls", "bot", "api"}
    assert (start.limits.users, start.limits.clients) == (3, 1000)
    assert set(business.modules) - set(start.modules) == {
        "mailings",
        "processes",
        "analytics",
        "webforms",
        "custom_fields",
        "import_export",
    }
    assert set(enterprise.modules) == set(KNOWN_MODULES)
    assert enterprise.limits.users is None
    assert enterprise.defaults.settings.custom_roles_allowed
    assert not business.defaults.settings.custom_roles_allowed


def test_realty_is_business_configured_differently() -> None:
    editions = load_editions()
    realty, business = editions["realty"], editions["business"]

    assert realty.modules == business.modules
    assert realty.limits == business.limits
    assert realty.defaults != business.defaults
    stage_names = {stage.names.en for pipeline in realty.defaults.pipelines for stage in pipeline.stages}
    assert {"Viewing scheduled", "Offer", "Deal closed"} <= stage_names
    field_keys = {field.key for field in realty.defaults.custom_fields}
    assert {"property_type", "budget", "district", "rooms"} <= field_keys
    assert realty.defaults.labels["client"].ru == "Покупатель"
    assert "client" not in business.defaults.labels
    assert {o.key for o in realty.defaults.call_outcomes} != {o.key for o in business.defaults.call_outcomes}


def test_with_module_lists_editions_in_display_order() -> None:
    editions = load_editions()

    assert editions.with_module("mailings") == ["business", "enterprise", "realty"]
    assert editions.with_module("audit_export") == ["enterprise"]
    assert editions.with_module("clients") == list(SHIPPED)


def test_unknown_module_name_in_code_is_an_error() -> None:
    editions = load_editions()
    # A typo in a guard must fail loudly instead of refusing the module to every tenant.
    with pytest.raises(ValueError, match="mailing"):
        editions["business"].has_module("mailing")
    with pytest.raises(ValueError, match="mailing"):
        editions.with_module("mailing")
    assert editions["business"].has_module("mailings")
    assert not editions["start"].has_module("mailings")


def test_public_summary_is_json_ready() -> None:
    editions = load_editions()

    summary = editions["enterprise"].public_summary()

    assert summary["key"] == "enterprise"
    assert summary["names"] == {"ru": "Корпоративный", "en": "Enterprise"}
    assert summary["limits"]["users"] is None
    assert summary["limits"]["api_requests_per_minute"] == 1200
    assert "audit_export" in summary["modules"]
    assert msgspec.json.decode(msgspec.json.encode(summary)) == summary


def test_public_editions_are_the_signup_page_ones() -> None:
    assert [edition.key for edition in load_editions().public()] == ["start", "business", "realty"]


def test_rights_not_listed_are_denied() -> None:
    manager = next(role for role in load_editions()["business"].defaults.roles if role.key == "manager")

    assert manager.rights.scope("clients", "read") == "own"
    assert manager.rights.scope("settings", "update") == "none"
    assert "settings" not in manager.rights.granted()
    assert manager.rights.granted()["clients"] == {"read": "own", "create": "own", "update": "own"}


def test_rights_struct_covers_every_entity_and_action() -> None:
    assert Rights.__struct_fields__ == ENTITIES
    assert Rights().clients.__struct_fields__ == ACTIONS


def test_load_editions_stops_at_a_bad_file(tmp_path: Path) -> None:
    write_edition(tmp_path, "minimal.toml", MINIMAL)
    broken = write_edition(tmp_path, "second.toml", MINIMAL.replace('key = "minimal"', 'key = "second"'))
    broken.write_text(broken.read_text(encoding="utf-8").replace("users = 3", "users = -3"), encoding="utf-8")

    with pytest.raises(EditionError) as raised:
        load_editions(tmp_path)

    assert (raised.value.file, raised.value.field) == (str(broken), "limits.users")


def test_load_editions_refuses_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(EditionError) as raised:
        load_editions(tmp_path)

    assert (raised.value.file, raised.value.field) == (str(tmp_path), "(directory)")
