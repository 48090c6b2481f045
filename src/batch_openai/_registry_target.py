"""Where a registry's Prefect state lives: an API URL, a Prefect home, and (maybe) a SQLite file to read.

`import prefect` alone costs 1–3 s, more than the whole budget of `batch-openai list`, so the common
configurations are resolved here by reading what Prefect itself reads: environment variables and the
active profile in `profiles.toml`. Anything this small reader does not understand (a `prefect.toml`,
`[tool.prefect]` in `pyproject.toml`, `PREFECT_*` lines in `.env`, a non-default database driver) is
handed to Prefect's own settings instead, so the answer is never a guess: the caller passes that step in
(`fallback`), since the core never imports Prefect (the Prefect layer's is
`batch_openai.flows.registry.target_from_prefect_settings`).
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Target", "legacy_env_path", "resolve_target", "sqlite_file"]

# The seed read its registry directory from this variable; it keeps that meaning (a registry home).
LEGACY_ENV = "OPENAI_BATCH_REGISTRY"
_DB_URL_KEYS = ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL")
_OTHER_DB_PREFIXES = ("PREFECT_SERVER_DATABASE_", "PREFECT_API_DATABASE_")
# Client settings plain httpx would not honour the way Prefect's client does.
_CLIENT_EXTRAS = (
    "PREFECT_API_TLS_INSECURE_SKIP_VERIFY",
    "PREFECT_API_SSL_CERT_FILE",
    "PREFECT_CLIENT_CUSTOM_HEADERS",
    "PREFECT_CLOUD_API_URL",
)


@dataclass(frozen=True)
class Target:
    """The Prefect state a registry reads and writes."""

    #: A Prefect API to talk to (a server), or None for a local Prefect home served by the ephemeral engine.
    api_url: str | None
    #: The Prefect home that holds the database when there is no API URL.
    home: Path | None
    #: The SQLite database file that read-only commands may read directly (None: go through the API).
    sqlite_path: Path | None
    #: True when the home was chosen by `path=` / `--registry` rather than by Prefect's own settings.
    explicit_home: bool = False
    #: True when plain httpx may read the API (no custom TLS or headers); Prefect's client otherwise.
    plain_http: bool = False
    api_key: str | None = field(default=None, repr=False)
    auth_string: str | None = field(default=None, repr=False)


def legacy_env_path() -> Path | None:
    """The registry home from `$OPENAI_BATCH_REGISTRY`, as the seed honoured it."""
    value = os.environ.get(LEGACY_ENV)
    return Path(value).expanduser() if value else None


def sqlite_file(url: str | None) -> Path | None:
    """The file behind a `sqlite+aiosqlite:///...` URL, or None for memory or another database."""
    if not url:
        return None
    for prefix in ("sqlite+aiosqlite:///", "sqlite:///"):
        if url.startswith(prefix):
            rest = url[len(prefix) :].split("?", 1)[0]
            if rest in ("", ":memory:") or "mode=memory" in url:
                return None
            return Path(rest).expanduser()
    return None


def _needs_prefect(cwd: Path) -> bool:
    """True when a config source this reader does not parse may change the answer."""
    if (cwd / "prefect.toml").is_file():
        return True
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file() and "[tool.prefect" in pyproject.read_text(encoding="utf-8", errors="replace"):
        return True
    dotenv = cwd / ".env"
    if dotenv.is_file() and "PREFECT_" in dotenv.read_text(encoding="utf-8", errors="replace"):
        return True
    return any(
        key.startswith(_OTHER_DB_PREFIXES) and key not in _DB_URL_KEYS and os.environ[key]
        for key in os.environ
    )


def _profile_settings(home: Path) -> dict[str, Any] | None:
    """The active profile's settings (Prefect's defaults merged with the user's file), None if unreadable."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return None
    default_file = Path(next(iter(spec.submodule_search_locations))) / "settings" / "profiles.toml"
    try:
        defaults = tomllib.loads(default_file.read_text())
        user_path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
        user = tomllib.loads(user_path.read_text()) if user_path.is_file() else {}
    except (OSError, tomllib.TOMLDecodeError):
        return None
    profiles: dict[str, dict[str, Any]] = {k: dict(v) for k, v in defaults.get("profiles", {}).items()}
    for name, settings in user.get("profiles", {}).items():
        profiles.setdefault(name, {}).update(settings)
    active = os.environ.get("PREFECT_PROFILE") or user.get("active") or defaults.get("active")
    return profiles.get(str(active), {})


def resolve_target(path: str | os.PathLike[str] | None, *, fallback: Callable[[], Target]) -> Target:
    """Resolve where the registry lives: `path` (a Prefect home of its own) or Prefect's active settings.

    `fallback` asks Prefect itself; it is called only when a setting this reader does not parse may matter.
    """
    if path is None:
        path = legacy_env_path()
    if path is not None:
        home = Path(path).expanduser().absolute()
        return Target(api_url=None, home=home, sqlite_path=home / "prefect.db", explicit_home=True)
    if _needs_prefect(Path.cwd()):
        return fallback()
    home = Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    profile = _profile_settings(home)
    if profile is None or any(
        str(k).startswith(_OTHER_DB_PREFIXES) and k not in _DB_URL_KEYS for k in profile
    ):
        return fallback()

    def setting(key: str) -> str | None:
        value = os.environ.get(key) or profile.get(key)
        return str(value) if value not in (None, "") else None

    api_url = setting("PREFECT_API_URL")
    db_url = next((os.environ[k] for k in _DB_URL_KEYS if os.environ.get(k)), None)
    if db_url is None:
        db_url = next((str(profile[k]) for k in _DB_URL_KEYS if profile.get(k)), None)
    if db_url is None:
        db_url = f"sqlite+aiosqlite:///{home}/prefect.db"
    return Target(
        api_url=api_url,
        home=home,
        sqlite_path=sqlite_file(db_url),
        plain_http=not any(setting(k) for k in _CLIENT_EXTRAS),
        api_key=setting("PREFECT_API_KEY"),
        auth_string=setting("PREFECT_API_AUTH_STRING"),
    )
