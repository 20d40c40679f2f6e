"""The pure core of doctor and heal: findings and repair plans decided from facts alone.

Facts are built by hand here (no files, no interpreters), so each case pins exactly which fact
leads to which finding and which action; tests/test_doctor.py and tests/test_heal_upgrade.py run
the same decisions against real environments.
"""

from __future__ import annotations

from venvkeeper.core import pyvenvcfg
from venvkeeper.doctor.diagnosis import Problem, diagnose
from venvkeeper.doctor.envfacts import Facts, Link, Script, tagged_extension
from venvkeeper.doctor.healplan import Redeploy, plan
from venvkeeper.project.interpreters import Interpreter

ROOT = "/srv/app/.venv"
PY311 = "/opt/python/3.11.9/bin/python3.11"
SUFFIXES_311 = [".cpython-311-x86_64-linux-gnu.so", ".abi3.so", ".so"]


def _interpreter(path: str = PY311, version: str = "3.11.9") -> Interpreter:
    minor = version.rsplit(".", 1)[0].replace(".", "")
    return Interpreter(
        path, "cpython", version, path, "", [f".cpython-{minor}-x86_64-linux-gnu.so", ".abi3.so", ".so"]
    )


def _healthy_facts() -> Facts:
    facts = Facts(ROOT, ROOT, "venv")
    facts.cfg_text = "home = /opt/python/3.11.9/bin\nversion_info = 3.11.9\n"
    facts.cfg = pyvenvcfg.parse(facts.cfg_text)
    facts.home_exists = True
    facts.home_interpreters = {PY311}
    facts.links = [
        Link("python", PY311, PY311),
        Link("python3", "python", PY311),
        Link("python3.11", "python", PY311),
    ]
    facts.base_interpreter = PY311
    facts.interpreter = _interpreter()
    facts.lib_versions = {"3.11": True}
    facts.lib64 = True
    facts.scripts = [Script("app", f"{ROOT}/bin/python", f"#!{ROOT}/bin/python")]
    facts.activate_path = ROOT
    facts.activate_real = ROOT
    facts.activates = ["activate"]
    return facts


def _codes(problems: list[Problem]) -> list[tuple[str, str, str]]:
    return [(p.code, p.severity, p.path) for p in problems]


def test_a_healthy_environment_has_no_findings_and_needs_no_plan() -> None:
    facts = _healthy_facts()
    assert diagnose(facts, lib64=True) == []
    assert plan(facts, [], target=None, redeploy=None, force=False).actions == []


def test_a_store_interpreter_that_moved_dangles_and_is_repointed_link_by_link() -> None:
    facts = _healthy_facts()
    gone = "/nix/store/abc-python3-3.11.9/bin/python3.11"
    facts.cfg = pyvenvcfg.parse("home = /nix/store/abc-python3-3.11.9/bin\nversion_info = 3.11.9\n")
    facts.home_exists = False
    facts.home_interpreters = set()
    facts.links = [
        Link("python", gone, None),
        Link("python3", "python", None),
        Link("python3.11", "python", None),
    ]
    facts.interpreter = None
    problems = diagnose(facts, lib64=True)
    assert _codes(problems) == [
        ("home-missing", "error", "pyvenv.cfg"),
        ("interpreter-dangling", "error", "bin/python"),
    ]
    assert "also dangling: bin/python3, bin/python3.11" in problems[1].seen

    new = _interpreter("/nix/store/def-python3-3.11.10/bin/python3.11", "3.11.10")
    result = plan(facts, problems, target=new, redeploy=None, force=False)
    # Only the absolute link changes: python3 and python3.11 follow it.
    assert [(a.action, a.path) for a in result.actions] == [
        ("relink", "bin/python"),
        ("write-pyvenv-cfg", "pyvenv.cfg"),
    ]
    assert result.actions[0].data["target"] == new.path
    assert result.actions[1].data["updates"] == {
        "home": "/nix/store/def-python3-3.11.10/bin",
        "version_info": "3.11.10",
    }
    assert set(result.covers) == {p.key for p in problems}


def _through_a_dangling_platform_link() -> Facts:
    """Routed through /opt/python/python3.11 (heal --link-root), whose store entry was collected."""
    facts = _healthy_facts()
    stable = "/opt/python/python3.11/bin/python3.11"
    facts.cfg = pyvenvcfg.parse("home = /opt/python/python3.11/bin\nversion_info = 3.11.9\n")
    facts.home_exists = False
    facts.home_interpreters = set()
    facts.links = [
        Link("python", "python3.11", None),
        Link("python3", "python3.11", None),
        Link("python3.11", stable, None),
    ]
    facts.base_interpreter = stable
    facts.interpreter_link = ("/opt/python/python3.11", "/nix/store/abc-python3-3.11.9")
    facts.interpreter = None
    return facts


def test_a_dangling_platform_link_is_one_finding_naming_the_link_and_both_fixes() -> None:
    facts = _through_a_dangling_platform_link()
    problems = diagnose(facts, lib64=True)
    assert _codes(problems) == [("interpreter-link-dangling", "error", "bin/python")]
    assert problems[0].seen.startswith(
        "/opt/python/python3.11 -> /nix/store/abc-python3-3.11.9, which does not exist"
    )
    assert problems[0].repair == (
        "re-point the platform's link: ln -sfn NEW_STORE_ENTRY /opt/python/python3.11 (every environment "
        f"on it follows), or venvkeeper heal --env {ROOT} --link-root /opt/python "
        "--python NEW_STORE_ENTRY/bin/python3.11"
    )

    new = _interpreter("/nix/store/def-python3-3.11.10/bin/python3.11", "3.11.10")
    healed = plan(facts, problems, target=new, redeploy=None, force=False)
    assert [(a.action, a.path) for a in healed.actions] == [
        ("relink", "bin/python3.11"),
        ("write-pyvenv-cfg", "pyvenv.cfg"),
    ]
    assert set(healed.covers) == {p.key for p in problems}
    stuck = plan(facts, problems, target=None, redeploy=None, force=False)
    assert stuck.skipped[problems[0].key].endswith(
        "; or re-point the platform's link: ln -sfn NEW_STORE_ENTRY /opt/python/python3.11"
    )

    # A sealed generation is redeployed, not routed by heal: its fix has no --link-root.
    facts.kind = "generation"
    assert f"venvkeeper heal --env {ROOT} --python NEW_STORE_ENTRY" in diagnose(facts, lib64=True)[0].repair


def test_a_link_dangling_for_another_reason_is_still_its_own_finding() -> None:
    facts = _through_a_dangling_platform_link()
    facts.links.append(Link("python3.11t", "/gone/python3.11t", None))
    problems = diagnose(facts, lib64=True)
    assert _codes(problems) == [
        ("interpreter-link-dangling", "error", "bin/python"),
        ("interpreter-dangling", "error", "bin/python3.11t"),
    ]
    assert "bin/python, bin/python3, bin/python3.11 and pyvenv.cfg's home go through it" in problems[0].seen


def test_no_interpreter_of_the_right_minor_means_skipped_with_the_remedy() -> None:
    facts = _healthy_facts()
    facts.links = [Link("python", "/gone/python3.11", None)]
    facts.interpreter = None
    problems = diagnose(facts, lib64=True)
    result = plan(facts, problems, target=None, redeploy=None, force=False)
    assert result.actions == []
    assert "no CPython 3.11 interpreter found" in result.skipped[("interpreter-dangling", "bin/python")]
    assert "--python /path/to/python3.11" in result.skipped[("interpreter-dangling", "bin/python")]


def test_a_minor_upgrade_under_the_same_path_is_a_rebuild_for_the_new_minor() -> None:
    facts = _healthy_facts()
    facts.interpreter = _interpreter("/usr/local/bin/python3", "3.12.4")
    problems = diagnose(facts, lib64=True)
    assert _codes(problems) == [("version-mismatch", "error", "lib/python3.11")]
    assert "CPython 3.12.4" in problems[0].seen
    result = plan(facts, problems, target=facts.interpreter, redeploy=None, force=False)
    assert [a.action for a in result.actions] == ["rebuild"]


def test_a_deployed_generation_is_redeployed_never_edited_and_a_changed_lock_stops_it() -> None:
    facts = _healthy_facts()
    facts.lib64 = False
    problems = diagnose(facts, lib64=True)
    assert _codes(problems) == [("lib64-missing", "warning", "lib64")]
    ok = plan(facts, problems, target=None, redeploy=Redeploy("/opt/app", None), force=False)
    assert [(a.action, a.data["project"]) for a in ok.actions] == [("redeploy", "/opt/app")]
    stopped = plan(
        facts, problems, target=None, redeploy=Redeploy("/opt/app", "uv.lock changed"), force=False
    )
    assert stopped.actions == []
    assert stopped.skipped == {("lib64-missing", "lib64"): "uv.lock changed"}


def test_moved_and_copied_environments_name_the_old_place_and_rewrite_only_those_files() -> None:
    facts = _healthy_facts()
    old = "/home/me/.venv"
    facts.scripts = [
        Script("app", f"{old}/bin/python", f"#!{old}/bin/python"),
        Script("tool", f"{old}/bin/python3.11", f"#!{old}/bin/python3.11"),
        Script("fine", f"{ROOT}/bin/python", f"#!{ROOT}/bin/python"),
    ]
    facts.places = {f"{old}/bin/python": "missing", f"{old}/bin/python3.11": "missing"}
    facts.activate_path = old
    facts.activate_real = old
    facts.activates = ["activate", "activate.fish"]
    problems = diagnose(facts, lib64=True)
    assert _codes(problems) == [
        ("stale-shebang", "error", "bin/app"),
        ("stale-shebang", "error", "bin/tool"),
        ("stale-activate", "warning", "bin/activate"),
        ("stale-activate", "warning", "bin/activate.fish"),
    ]
    assert "does not exist (the environment was moved)" in problems[0].seen
    facts.places = dict.fromkeys(facts.places, "environment")
    facts.activate_exists = True
    assert "is another environment (this one is a copy)" in diagnose(facts, lib64=True)[0].seen

    (action,) = plan(facts, problems, target=None, redeploy=None, force=False).actions
    assert action.action == "rewrite-paths"
    assert action.data["shebangs"] == {
        "bin/app": (f"{old}/bin/python", f"{ROOT}/bin/python"),
        "bin/tool": (f"{old}/bin/python3.11", f"{ROOT}/bin/python3.11"),
    }
    assert action.data["activates"] == {"bin/activate": (old, ROOT), "bin/activate.fish": (old, ROOT)}


def test_user_managed_is_a_note_and_heal_skips_everything_unless_forced() -> None:
    facts = _healthy_facts()
    facts.lib64 = False
    facts.managed_by = ".managed-by says it is managed by the platform team"
    problems = diagnose(facts, lib64=True)
    assert _codes(problems) == [("user-managed", "note", "."), ("lib64-missing", "warning", "lib64")]
    skipped = plan(facts, problems, target=None, redeploy=None, force=False)
    assert skipped.actions == []
    assert "--force" in skipped.skipped[("lib64-missing", "lib64")]
    forced = plan(facts, problems, target=None, redeploy=None, force=True)
    assert [a.action for a in forced.actions] == ["create-lib64"]


def test_a_package_directory_is_converted_with_an_interpreter_of_its_packages_minor() -> None:
    facts = Facts("/home/u/.pythonlibs", "/home/u/.pythonlibs", "package-dir")
    facts.lib_versions = {"3.10": True}
    facts.scripts = [Script("flask", "/nix/store/x-python3-3.10.13/bin/python3.10", "#!...")]
    facts.places = {"/nix/store/x-python3-3.10.13/bin/python3.10": "interpreter"}
    problems = diagnose(facts, lib64=True)
    assert _codes(problems) == [("not-a-venv", "error", "."), ("stale-shebang", "error", "bin/flask")]
    wrong = plan(facts, problems, target=_interpreter(), redeploy=None, force=False)
    assert wrong.actions == []
    assert "packages are for Python 3.10, not 3.11" in wrong.skipped[("not-a-venv", ".")]
    right = plan(
        facts, problems, target=_interpreter("/usr/bin/python3.10", "3.10.13"), redeploy=None, force=False
    )
    assert [(a.action, a.data["minor"], a.data["flat"]) for a in right.actions] == [
        ("convert", "3.10", False)
    ]


def test_extensions_for_another_abi_are_one_finding_per_distribution() -> None:
    assert tagged_extension("_speed.cpython-310-x86_64-linux-gnu.so") == ".cpython-310-x86_64-linux-gnu.so"
    assert tagged_extension("_speed.abi3.so") is None
    assert tagged_extension("libopenblas-0cf96a72.3.23.so") is None
    facts = _healthy_facts()
    facts.foreign_extensions = {
        "lib/python3.11/site-packages/fast/_a.cpython-310-x86_64-linux-gnu.so": "fast 1.0",
        "lib/python3.11/site-packages/fast/_b.cpython-310-x86_64-linux-gnu.so": "fast 1.0",
        "lib/python3.11/site-packages/stray.cpython-39-x86_64-linux-gnu.so": "",
    }
    problems = diagnose(facts, lib64=True)
    assert [(p.code, p.distribution, p.path) for p in problems] == [
        ("abi-mismatch", "fast", "lib/python3.11/site-packages/fast/_a.cpython-310-x86_64-linux-gnu.so"),
        ("abi-mismatch", None, "lib/python3.11/site-packages/stray.cpython-39-x86_64-linux-gnu.so"),
    ]
    assert "(2 files)" in problems[0].seen
    result = plan(facts, problems, target=None, redeploy=None, force=False)
    assert [a.data["requirement"] for a in result.actions] == ["fast==1.0"]
    assert result.skipped == {problems[1].key: "no distribution owns it; remove it by hand"}


def test_pyvenv_cfg_keeps_unknown_keys_and_drops_only_bad_lines() -> None:
    text = "home = /old/bin\ninclude-system-site-packages = false\nthis is garbage\nversion = 3.11.1\n"
    cfg = pyvenvcfg.parse(text)
    assert cfg.bad_lines == ["this is garbage"]
    assert cfg.values["home"] == "/old/bin"
    updated = pyvenvcfg.render_updated(text, {"home": "/new/bin", "version": "3.11.9"}, drop_bad=True)
    assert updated == "home = /new/bin\ninclude-system-site-packages = false\nversion = 3.11.9\n"
