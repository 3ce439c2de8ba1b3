"""Settings come from CRM_* variables, fail naming the variable, and keep secrets secret."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from crm.settings import Secret, SettingsError, load_settings


def test_defaults_and_overrides(tmp_path: Path) -> None:
    settings = load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_PORT": "9000", "CRM_LOG_LEVEL": "debug"})
    assert settings.web.port == 9000 and settings.web.host == "127.0.0.1"
    assert settings.log_level == "DEBUG"
    assert settings.database.url is None and settings.broker.url is None and settings.sentry.dsn is None
    assert settings.data_dir == tmp_path.resolve()


def test_secret_key_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    first = load_settings({"CRM_DATA_DIR": str(tmp_path)})
    second = load_settings({"CRM_DATA_DIR": str(tmp_path)})
    key_file = tmp_path / "secret_key"
    assert first.secret_key.reveal() == second.secret_key.reveal() == key_file.read_text()
    assert len(first.secret_key.reveal()) >= 48
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_secrets_never_print(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "CRM_DATA_DIR": str(tmp_path),
            "CRM_SECRET_KEY": "k" * 40,
            "CRM_SENTRY_DSN": "https://abcdef@sentry.example/1",
        }
    )
    printed = f"{settings!r} {settings}"
    assert "k" * 40 not in printed and "abcdef" not in printed
    assert settings.secret_key.reveal() == "k" * 40
    assert str(Secret("x")) == "Secret('**********')"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CRM_PORT", "eighty"),
        ("CRM_PORT", "0"),
        ("CRM_LOG_LEVEL", "LOUD"),
        ("CRM_SECRET_KEY", "short"),
        ("CRM_DB_POOL_MAX", "-1"),
        ("CRM_SENTRY_TRACES_SAMPLE_RATE", "half"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({"CRM_DATA_DIR": str(tmp_path), variable: value})
