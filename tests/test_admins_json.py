"""The auto-updater's admins: ``ADMINS_JSON='[["First Last", "mail@example.org"], ...]'`` in the
.env beside the project (the format of the script update replaces) are the mail's recipients when
pyproject.toml names none; ``notify.to`` and ``VENVKEEPER_ADMINS`` still win."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from support.gitremote import add_remote
from support.smtp import SmtpServer
from test_update import PROJECT, publish_releases, use_mail
from venvkeeper.core.errors import ConfigError
from venvkeeper.update.mail import NotifyConfig, load_settings
from vk import commit_all, vk

# As the auto-updater's .env has it: single-quoted, spaces inside the brackets.
ADMINS_JSON = (
    """ADMINS_JSON=' [ [ "Ada Lovelace", "ada@example.org" ],"""
    """ [ "Grace M. Hopper", "grace@example.org" ] ]'\n"""
)
TO_HEADER = 'Ada Lovelace <ada@example.org>, "Grace M. Hopper" <grace@example.org>'


def test_an_update_mails_the_admins_json_recipients(
    make_project: Callable[..., Path],
    tmp_path: Path,
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = make_project(PROJECT)
    pyproject = project / "pyproject.toml"
    # No notify.to: the fixture's only recipient line goes, so ADMINS_JSON is all there is.
    without_to = re.sub(r'(?m)^to = \["ops@updatable\.invalid"\]\n', "", pyproject.read_text())
    assert without_to != pyproject.read_text()
    pyproject.write_text(without_to)
    commit_all(project, "no notify.to")
    add_remote(project, tmp_path)
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    (project.parent / ".env").write_text(ADMINS_JSON)
    use_mail(monkeypatch, smtp.port)
    publish_releases(publish)

    result = vk(capsys, "update", project, "--env", env, "--json", "--policy", "minor")

    assert result.code == 0, result.out + result.err
    assert result.json["notification"] == {
        "sent": True,
        "to": ["Ada Lovelace <ada@example.org>", '"Grace M. Hopper" <grace@example.org>'],
        "error": None,
        "skipped": None,
    }
    (message,) = smtp.messages
    assert message["To"] == TO_HEADER
    (envelope,) = smtp.envelopes
    assert envelope.rcpt_tos == ("ada@example.org", "grace@example.org")


def _project(tmp_path: Path, env_file: str) -> Path:
    project = tmp_path / "webapp"
    project.mkdir()
    (tmp_path / ".env").write_text(env_file)
    return project


@pytest.mark.parametrize("notify", [NotifyConfig(), None], ids=["to-empty", "pyproject-unreadable"])
def test_admins_json_is_the_last_fallback(tmp_path: Path, notify: NotifyConfig | None) -> None:
    project = _project(tmp_path, ADMINS_JSON)

    recipients = load_settings(project, notify, {}, "web1").recipients
    assert recipients == ("Ada Lovelace <ada@example.org>", '"Grace M. Hopper" <grace@example.org>')
    # The environment's ADMINS_JSON wins over the file's, as every other setting does.
    environ = {"ADMINS_JSON": '[["Boss", "boss@example.org"]]'}
    assert load_settings(project, notify, environ, "web1").recipients == ("Boss <boss@example.org>",)
    admins = {"VENVKEEPER_ADMINS": "ops@example.org"}
    assert load_settings(project, notify, admins, "web1").recipients == ("ops@example.org",)
    with_to = NotifyConfig(to=("team@example.org",))
    assert load_settings(project, with_to, {}, "web1").recipients == ("team@example.org",)


@pytest.mark.parametrize(
    "value",
    ['"ada@example.org"', '[["Ada", "ada@example.org", "x"]]', '[["Ada", "not-an-address"]]', "[[", "{}"],
)
def test_a_malformed_admins_json_names_the_file_and_the_format(tmp_path: Path, value: str) -> None:
    project = _project(tmp_path, f"ADMINS_JSON='{value}'\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(project, NotifyConfig(), {}, "web1")
    assert raised.value.message.startswith(
        f"ADMINS_JSON (from {project / '..' / '.env'}) must be a JSON list of [name, address] pairs"
    )
    # Not read at all when pyproject.toml names the recipients.
    assert load_settings(project, NotifyConfig(to=("team@example.org",)), {}, "web1").recipients
