"""The environment every test runs in: the local index, fresh homes, no machine config.

:func:`hermetic_environ` is pure: it takes the machine's environment and returns the one
the tests see, so the conftest fixture and the session's own uv runs agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["GIT_EMAIL", "GIT_NAME", "hermetic_environ"]

GIT_NAME = "venvkeeper tests"
GIT_EMAIL = "tests@venvkeeper.invalid"

# Whole families of configuration that change where uv, pip or git look, or what they do.
# This machine, for one, sets PIP_FIND_LINKS=/opt/wheels and PIP_CERT.
_DROPPED_PREFIXES = ("UV_", "PIP_", "GIT_", "XDG_", "CONDA_")
_DROPPED = frozenset(
    {
        # An active environment: uv would install into it instead of the project's.
        "VIRTUAL_ENV",
        # Imports and start-up of every Python that a test starts.
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONUSERBASE",
        "PYTHONSAFEPATH",
        # pyenv's shims would pick another interpreter for `python3`.
        "PYENV_VERSION",
        # Proxies: 127.0.0.1 is reached directly (NO_PROXY below) and nothing else is reached.
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        # Output: tests read what a user reads in a pipe.
        "FORCE_COLOR",
        "CLICOLOR_FORCE",
        "NO_COLOR",
    }
)


def _dropped(name: str) -> bool:
    return name in _DROPPED or name.startswith(_DROPPED_PREFIXES)


def hermetic_environ(
    base: Mapping[str, str], *, index_url: str, home: Path, uv_cache_dir: Path
) -> dict[str, str]:
    """``base`` without machine configuration, pointed at the local index and ``home``."""
    environ = {name: value for name, value in base.items() if not _dropped(name)}
    environ.update(
        {
            "UV_INDEX_URL": index_url,
            "UV_DEFAULT_INDEX": index_url,
            "PIP_INDEX_URL": index_url,
            "UV_CACHE_DIR": str(uv_cache_dir),
            "UV_PYTHON_DOWNLOADS": "never",
            # A refused connection fails at once instead of after uv's retries with backoff.
            "UV_HTTP_RETRIES": "0",
            # pip reads no config file at all with this (/etc/pip.conf adds an extra index here).
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_BIN_HOME": str(home / ".local" / "bin"),
            # uv's system-level uv.toml is looked for under these.
            "XDG_CONFIG_DIRS": str(home / ".config-system"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
            "GIT_AUTHOR_NAME": GIT_NAME,
            "GIT_AUTHOR_EMAIL": GIT_EMAIL,
            "GIT_COMMITTER_NAME": GIT_NAME,
            "GIT_COMMITTER_EMAIL": GIT_EMAIL,
            "GIT_TERMINAL_PROMPT": "0",
        }
    )
    return environ
