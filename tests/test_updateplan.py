"""The pure core of ``venvkeeper update``: what uv may take, and whether what it took is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from venvkeeper.core.errors import ConfigError
from venvkeeper.update.config import UpdateConfig, parse_update_config
from venvkeeper.update.plan import (
    Change,
    changes_between,
    commit_message,
    direct_names,
    groups_for_host,
    lock_diff,
    locked_versions,
    plan_upgrade,
    to_hold,
    upper_bound,
    violations,
    violators,
)

LOCK = {
    "version": 1,
    "package": [
        {
            "name": "app",
            "version": "0.1.0",
            "source": {"virtual": "."},
            "metadata": {
                "requires-dist": [{"name": "Tiny_DB"}, {"name": "tinyweb", "specifier": "~=1.0"}],
                "requires-dev": {"dev": [{"name": "tinyextra"}]},
            },
        },
        {"name": "tinydb", "version": "1.2.0", "source": {"registry": "http://127.0.0.1/simple"}},
        {"name": "tinyweb", "version": "1.0.0", "source": {"registry": "http://127.0.0.1/simple"}},
        {"name": "tinyutil", "version": "1.1.0", "source": {"registry": "http://127.0.0.1/simple"}},
        {"name": "tinyutil", "version": "2.0.0", "source": {"registry": "http://127.0.0.1/simple"}},
        {"name": "tinyextra", "version": "1.0.0", "source": {"registry": "http://127.0.0.1/simple"}},
        {"name": "fromgit", "version": "0.3.0", "source": {"git": "https://example.invalid/x.git"}},
    ],
}


@pytest.mark.parametrize(
    ("version", "policy", "bound"),
    [
        ("1.2.0", "patch", "<1.3"),
        ("1.2.0", "minor", "<2"),
        ("1.2.0", "major", None),
        ("1", "patch", "<1.1"),
        ("2.0.0rc1", "patch", "<2.1"),
        ("2026.10.18", "minor", "<2027"),
    ],
)
def test_each_policy_bounds_the_version(version: str, policy: str, bound: str | None) -> None:
    assert upper_bound(version, policy) == bound


def test_members_are_not_packages_to_upgrade_and_forks_keep_every_version() -> None:
    assert locked_versions(LOCK) == {
        "fromgit": ("0.3.0",),
        "tinydb": ("1.2.0",),
        "tinyextra": ("1.0.0",),
        "tinyutil": ("1.1.0", "2.0.0"),
        "tinyweb": ("1.0.0",),
    }
    assert "fromgit" not in locked_versions(LOCK, registry_only=True)


def test_direct_names_come_from_the_members_dependencies_and_groups() -> None:
    assert direct_names(LOCK) == {"tiny-db", "tinyweb", "tinyextra"}


def test_the_plan_asks_uv_for_one_bounded_upgrade_per_package_with_overrides() -> None:
    versions = locked_versions(LOCK, registry_only=True)
    plan = plan_upgrade(versions, "patch", {"tinyweb": "exclude", "tinyextra": "==1.0.1", "tinydb": "major"})
    # tinyutil is forked (1.1.0 and 2.0.0): one request, with the bound above the highest fork.
    assert plan.requests == ("tinydb", "tinyextra==1.0.1", "tinyutil<2.1")
    assert plan.rules == {
        "tinydb": "major",
        "tinyextra": "==1.0.1",
        "tinyutil": "patch",
        "tinyweb": "exclude",
    }
    assert "tinyutil<3" in plan_upgrade(versions, "minor", {}).requests
    assert "tinyutil" in plan_upgrade(versions, "major", {}).requests


def test_changes_are_named_by_kind_and_origin() -> None:
    old = {"a": ("1.2.0",), "b": ("1.2.0",), "c": ("1.2.0",), "d": ("1.2.0",), "gone": ("1.0",)}
    new = {"a": ("1.2.1",), "b": ("1.3.0",), "c": ("2.0.0",), "d": ("1.1.9",), "fresh": ("0.1",)}
    changes = changes_between(old, new, {"a", "c"})
    assert [(c.name, c.kind, c.direct) for c in changes] == [
        ("a", "patch", True),
        ("b", "minor", False),
        ("c", "major", True),
        ("d", "downgrade", False),
        ("fresh", "added", False),
        ("gone", "removed", False),
    ]
    assert changes_between(old, old, set()) == []


def test_violations_catch_uv_moving_a_package_past_its_rule() -> None:
    changes = [
        Change("a", "1.2.0", "1.3.0", "minor", True),
        Change("b", "1.2.0", "1.2.5", "patch", False),
        Change("c", "1.0.0", "1.0.1", "patch", False),
        Change("d", "1.0.0", "1.0.2", "patch", False),
        Change("e", "1.2.5", "1.1.0", "downgrade", False),
        Change("f", "1.2.5", "1.2.1", "downgrade", False),
        Change("new", None, "1.0", "added", False),
    ]
    rules = {"a": "patch", "b": "patch", "c": "exclude", "d": "==1.0.1", "e": "patch", "f": "patch"}
    assert violations(changes, rules) == [
        "a 1.2.0 -> 1.3.0 is a minor change, beyond the patch policy",
        "c 1.0.0 -> 1.0.1, but it is excluded from updates",
        "d 1.0.0 -> 1.0.2, but it is pinned to 1.0.1",
        "e 1.2.5 -> 1.1.0 is a downgrade beyond the patch policy",
    ]
    assert violations(changes, {"a": "minor", "b": "major"}) == []


def test_each_new_fork_version_is_checked_against_the_old_forks_bounds() -> None:
    old = {"numpy": ("1.26.4", "2.2.0"), "tinydb": ("1.2.0", "1.3.0")}
    within = {"numpy": ("1.26.5", "2.2.3"), "tinydb": ("1.2.1", "1.3.0")}
    rules = {"numpy": "patch", "tinydb": "patch"}
    changes = changes_between(old, within, set())
    assert [(c.name, c.old, c.new) for c in changes] == [
        ("numpy", "1.26.4, 2.2.0", "1.26.5, 2.2.3"),
        ("tinydb", "1.2.0, 1.3.0", "1.2.1, 1.3.0"),
    ]
    assert violations(changes, rules) == []
    # Forks that merge into one version, or split, stay allowed while each new version is in range.
    merged = changes_between(old, {"numpy": ("2.2.1",), "tinydb": ("1.2.1", "1.3.0", "1.3.1")}, set())
    assert violations(merged, rules) == []

    # The older fork moved past its own major.minor (to one no old version covers): named.
    beyond = changes_between(old, {"numpy": ("1.27.0", "2.2.3"), "tinydb": ("1.3.0", "1.4.0")}, set())
    assert violations(beyond, rules) == [
        "numpy 1.26.4, 2.2.0 -> 1.27.0, 2.2.3: 1.27.0 is beyond the patch policy of every locked version",
        "tinydb 1.2.0, 1.3.0 -> 1.3.0, 1.4.0: 1.4.0 is beyond the patch policy of every locked version",
    ]
    assert violations(beyond, {"numpy": "minor", "tinydb": "minor"}) == []
    # A downgrade out of every fork's range is one too; inside a fork's range it is not.
    down = changes_between(old, {"numpy": ("1.25.0", "2.2.0"), "tinydb": ("1.2.0", "1.2.9")}, set())
    assert violations(down, rules) == [
        "numpy 1.26.4, 2.2.0 -> 1.25.0, 2.2.0: 1.25.0 is beyond the patch policy of every locked version"
    ]
    # Exclude and pins still hold a forked package exactly.
    assert violations(changes, {"numpy": "exclude", "tinydb": "==1.2.1"}) == [
        "numpy 1.26.4, 2.2.0 -> 1.26.5, 2.2.3, but it is excluded from updates",
        "tinydb 1.2.0, 1.3.0 -> 1.2.1, 1.3.0, but it is pinned to 1.2.1",
    ]


def test_a_package_uv_moved_past_its_rule_is_held_at_the_locked_version_in_the_next_plan() -> None:
    # uv may downgrade one package to make room for another's upgrade (posting's lock under
    # `uv lock --upgrade`: pytest-textual-snapshot 1.1.0 -> 1.0.0). That package is named, and the
    # next plan asks uv for no upgrade of it, so uv keeps the locked version where it can.
    old = {"snapshot": ("1.1.0",), "syrupy": ("4.8.0",)}
    changes = changes_between(old, {"snapshot": ("1.0.0",), "syrupy": ("4.8.2",)}, set())
    rules = {"snapshot": "patch", "syrupy": "patch"}
    assert violators(changes, rules) == ["snapshot"]

    held = plan_upgrade(old, "patch", {}, hold=violators(changes, rules))

    assert held.requests == ("syrupy<4.9",)
    # Its rule still applies: should uv move it anyway, the run fails naming it.
    assert held.rules == rules
    assert violators(changes_between(old, {"snapshot": ("1.1.1",), "syrupy": ("4.8.2",)}, set()), rules) == []


def test_what_is_held_is_the_package_that_broke_its_rule_and_its_dependencies_that_moved() -> None:
    # snapshot 1.1.0 pins syrupy 4.8.0; uv upgraded syrupy and downgraded snapshot to fit. Holding
    # snapshot alone is not enough (syrupy's upgrade still pushes it down): both keep the old pair.
    lock = {
        "package": [
            {
                "name": "snapshot",
                "version": "1.1.0",
                "source": {"registry": "https://example.invalid/simple"},
                "dependencies": [{"name": "syrupy"}, {"name": "rich"}],
            },
            {"name": "syrupy", "version": "4.8.0", "source": {"registry": "https://example.invalid/simple"}},
            {"name": "rich", "version": "14.0.0", "source": {"registry": "https://example.invalid/simple"}},
            {"name": "click", "version": "8.2.0", "source": {"registry": "https://example.invalid/simple"}},
        ]
    }
    old = locked_versions(lock)
    new = {**old, "snapshot": ("1.0.0",), "syrupy": ("4.8.2",), "click": ("8.2.1",)}
    changes = changes_between(old, new, set())
    rules = dict.fromkeys(old, "patch")

    assert to_hold(lock, changes, rules) == ["snapshot", "syrupy"]  # not rich (unmoved), not click
    assert to_hold(lock, changes_between(old, {**old, "click": ("8.2.1",)}, set()), rules) == []


def test_commit_message_lists_every_change() -> None:
    message = commit_message(
        [
            Change("tinydb", "1.2.0", "1.2.1", "patch", True),
            Change("tinyutil", "1.1.0", "1.1.1", "patch", False),
        ],
        "patch",
    )
    subject, blank, *body = message.splitlines()
    assert subject == "Update dependencies (patch): tinydb 1.2.1, tinyutil 1.1.1"
    assert blank == ""
    assert "  tinydb    1.2.0 -> 1.2.1  (patch, direct)" in body
    assert "  tinyutil  1.1.0 -> 1.1.1  (patch, transitive)" in body


def test_groups_come_from_the_command_line_then_the_host_rule_then_the_defaults() -> None:
    hosts = [("web-staging*", ["staging"]), ("web-*", ["production"])]
    assert groups_for_host(["x", "x"], hosts, "web-staging1", ["d"]) == (("x",), "--group")
    assert groups_for_host(None, hosts, "web-staging1", ["d"]) == (("staging",), "hosts rule 'web-staging*'")
    assert groups_for_host(None, hosts, "web-1", ["d"]) == (("production",), "hosts rule 'web-*'")
    assert groups_for_host(None, hosts, "db-1", ["d"]) == (("d",), "[tool.venvkeeper] groups")


def test_lock_diff_is_a_unified_diff_of_the_lock() -> None:
    diff = lock_diff(b'a = 1\nversion = "1.2.0"\n', b'a = 1\nversion = "1.2.1"\n')
    assert diff.splitlines()[:2] == ["--- a/uv.lock", "+++ b/uv.lock"]
    assert '-version = "1.2.0"' in diff.splitlines()
    assert '+version = "1.2.1"' in diff.splitlines()


def _config(table: dict[str, object]) -> UpdateConfig:
    return parse_update_config({"tool": {"venvkeeper": {"update": table}}}, Path("/p/pyproject.toml"))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"policy": "weekly"}, 'policy must be "patch", "minor" or "major"'),
        ({"surprise": 1}, "unknown key [tool.venvkeeper.update] surprise"),
        ({"packages": {"tinydb": "==x.y"}}, 'packages.tinydb must be a pin with a valid version ("==x.y"'),
        ({"packages": {"tinydb": "latest"}}, 'packages.tinydb must be "exclude", "==VERSION"'),
        ({"test-timeout": 0}, "test-timeout must be a number of seconds > 0"),
        ({"keep-backups": 0}, "keep-backups must be a whole number >= 1"),
        (
            {"exports": [{"format": "requirements.txt", "path": "../out.txt"}]},
            "a new file inside the project",
        ),
        (
            {"exports": [{"format": "pylock.toml", "path": "pyproject.toml"}]},
            "not uv.lock, pyproject.toml or .git",
        ),
        ({"hosts": {"web-*": "production"}}, "hosts.web-* must be a list of group names"),
    ],
)
def test_a_bad_update_table_names_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(table)
    assert message in caught.value.message
    assert "/p/pyproject.toml" in caught.value.message


def test_a_good_update_table_is_read_whole() -> None:
    config = _config(
        {
            "policy": "minor",
            "test-command": "pytest -q",
            "packages": {"Tiny_DB": " ==1.2.0 ", "tinyweb": "exclude"},
            "hosts": {"web-*": ["production"]},
            "exports": [{"format": "requirements.txt", "path": "./requirements.txt"}],
        }
    )
    assert config.policy == "minor"
    assert config.packages == {"tiny-db": "==1.2.0", "tinyweb": "exclude"}
    assert config.hosts == (("web-*", ("production",)),)
    assert [e.path for e in config.exports] == ["requirements.txt"]
