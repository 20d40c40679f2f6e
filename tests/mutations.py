"""Break a key guard on purpose and show that the tests notice (docs/architecture.md, "Tests that can fail").

    .venv/bin/python tests/mutations.py [NAME ...]

Each mutation replaces one exact piece of venvkeeper's source (it must occur exactly once, so the
mutation cannot silently stop applying when the code moves), runs the tests named for it, and restores
the file whatever happens. A mutation is *caught* when at least one of those tests fails. The script
exits 0 only when every mutation it ran was caught.

Not collected by pytest (the name does not start with ``test_``): it runs pytest itself, and changes
source files while it runs, so run it in a clean working tree and let it finish.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "venvkeeper"


@dataclass(frozen=True)
class Mutation:
    name: str
    guard: str  # what the guard protects, in a user's words
    path: str  # relative to src/venvkeeper
    edits: tuple[tuple[str, str], ...]  # (original, mutated), each original found exactly once
    tests: tuple[str, ...]  # pytest node ids


_SETTLED = "live.record is not None and live.intact and live.record.inputs_sha256 == project.inputs"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "noop-fast-path",
        "the no-op fast path answers 'unchanged' only while every file it depends on has the same stat",
        "cli/fastpath.py",
        (
            (
                "stamps.file_stat(path) != recorded for path, recorded in",
                "False for path, recorded in",
            ),
        ),
        ("tests/test_fastpath.py",),
    ),
    Mutation(
        "noop-decision",
        "deploy's decision says 'unchanged' at once only when the inputs digest equals the live one's",
        "deploy/decision.py",
        ((_SETTLED, "live.record is not None and live.intact"),),
        ("tests/test_decision.py", "tests/test_deploy.py"),
    ),
    Mutation(
        "noop-shortcuts-off",
        "with both no-op shortcuts off (the inputs digest, the recorded lock check and export), an "
        "unchanged deploy runs uv, and the test that a no-op runs no uv notices",
        "deploy/decision.py",
        (
            (_SETTLED, "False"),
            (
                "lock_known_good = record is not None and record.lock_inputs_sha256 == project.lock_inputs",
                "lock_known_good = False",
            ),
        ),
        ("tests/test_deploy.py::test_second_deploy_is_a_no_op_without_running_uv",),
    ),
    Mutation(
        "python-checked-first",
        "a --python path that uv refuses (outside requires-python, no interpreter) is refused before "
        "anything is built or installed, though uv checks it beside the export",
        "deploy/converge.py",
        (
            (
                "                verdicts.interpreter_checked()\n                decided",
                "                decided",
            ),
        ),
        ("tests/test_converge_checks.py",),
    ),
    Mutation(
        "smoke-check",
        "a generation whose members do not import is never switched to",
        "generations/smoke.py",
        (
            (
                '    if report["failures"]:\n        raise SmokeCheckError(',
                "    if False:\n        raise SmokeCheckError(",
            ),
        ),
        ("tests/test_deploy_errors.py",),
    ),
    Mutation(
        "manifest-check",
        "verify compares every file's sha256 with the sealed manifest",
        "generations/findings.py",
        (
            (
                "st.size != sealed.size or (actual is not None and actual != sealed.sha256)",
                "st.size != sealed.size",
            ),
        ),
        ("tests/test_verify.py",),
    ),
    Mutation(
        "signature-check",
        "install refuses a bundle whose signature is not the key's",
        "core/signing.py",
        (("        key.verify(signature, data)\n", "        pass\n"),),
        ("tests/test_bundle.py", "tests/test_install_hostile.py", "tests/test_bundle_unpack.py"),
    ),
    Mutation(
        "update-bound",
        "update never ships a package moved past its policy's bound",
        "update/plan.py",
        (
            (
                '        if rule is None or change.kind in ("added", "removed"):\n            continue\n',
                "        continue\n",
            ),
        ),
        ("tests/test_updateplan.py", "tests/test_update.py"),
    ),
    Mutation(
        "update-advisory",
        "update never ships a candidate version with a known advisory: it is held back and named",
        "update/security.py",
        (("            if known and change.name not in bad:\n", "            if False:\n"),),
        ("tests/test_update_security.py::test_a_vulnerable_candidate_is_held_back_and_named",),
    ),
    Mutation(
        "update-advisory-unblock",
        "a cap below a vulnerable version that leaves uv no solution holds the package whose update needs "
        "that version, and the rest of the update ships",
        "update/screen.py",
        (
            (
                '    chosen = security.named_in(f"{uv_reason}\\n{uv_output}", left)\n',
                "    chosen: list[str] = []\n",
            ),
        ),
        (
            "tests/test_update_security.py::"
            "test_a_package_whose_update_needs_the_vulnerable_version_is_held_too_and_the_rest_ships",
        ),
    ),
    Mutation(
        "update-advisory-unblock-named",
        "only the dependents uv's reason names are held back: another dependent of the capped package "
        "still moves",
        "update/screen.py",
        (
            (
                '    chosen = security.named_in(f"{uv_reason}\\n{uv_output}", left)\n',
                "    chosen = sorted(left)\n",
            ),
        ),
        (
            "tests/test_update_security.py::"
            "test_a_package_whose_update_needs_the_vulnerable_version_is_held_too_and_the_rest_ships",
        ),
    ),
    Mutation(
        "update-security-level",
        "a fix of a known advisory passes the policy only as far as [tool.venvkeeper.update] security allows",
        "update/security.py",
        (
            (
                "        if kind is not None and kind not in _WITHIN[rule] and kind in _WITHIN[level]:\n",
                "        if kind is not None and kind not in _WITHIN[rule]:\n",
            ),
        ),
        (
            "tests/test_update_security.py::test_fix_targets_take_the_lowest_fix_past_the_policy_within_the_level",
        ),
    ),
    Mutation(
        "clone-ctime",
        "a file written in place with its mtime put back is hashed before it is linked",
        "generations/clone.py",
        (("    if st.st_ctime_ns != ctime_ns:\n", "    if False:\n"),),
        ("tests/test_clone.py",),
    ),
    Mutation(
        "ctime-explained",
        "removing a generation explains only the ctimes its own unlinks moved, never an edit before them",
        "generations/identity.py",
        (
            (
                "        ours = (st.st_size, st.st_mtime_ns, st.st_ctime_ns) == "
                "(sealed.size, sealed.mtime_ns, expected)\n",
                "        ours = True\n",
            ),
        ),
        ("tests/test_clone.py",),
    ),
    Mutation(
        "progress-off-a-terminal",
        "off a terminal a command prints what it printed before progress existed (no step, no rich)",
        "cli/progress.py",
        (("        return stream.isatty()\n", "        return True\n"),),
        (
            "tests/test_progress.py::test_an_error_with_quiet_on_a_terminal_is_the_error_off_a_terminal",
            "tests/test_progress.py::test_rich_is_not_imported_off_a_terminal_nor_when_nothing_changes",
        ),
    ),
    Mutation(
        "progress-quiet",
        "--quiet on a terminal prints what a pipe gets: not one byte of progress",
        "cli/progress.py",
        (("    if as_json or quiet or stream is None:\n", "    if as_json or stream is None:\n"),),
        ("tests/test_progress.py::test_quiet_and_json_on_a_terminal_print_what_a_pipe_gets",),
    ),
    Mutation(
        "sbom-installed-wheel",
        "a generation's SBOM gives each installed package the lock's sha256 of the wheel installed",
        "sbom/facts.py",
        (("artifact.sha256 if artifact is not None else None,", "None,"),),
        ("tests/test_sbom.py::test_a_deploy_writes_a_valid_sbom_of_the_lock_beside_the_record",),
    ),
    Mutation(
        "sbom-sealed",
        "a generation's SBOM is sealed by its record's sbom_sha256 (as a bundle's by its manifest)",
        "deploy/populate.py",
        (("    state.sbom_sha256 = sbomgen.write_generation(", "    _ = sbomgen.write_generation("),),
        (
            "tests/test_sbom.py::test_a_deploy_writes_a_valid_sbom_of_the_lock_beside_the_record",
            "tests/test_sbom.py::test_an_altered_or_missing_sbom_is_refused_not_printed",
        ),
    ),
    Mutation(
        "sbom-recorded",
        "sbom --env and receipt refuse an SBOM that is not the one the generation's record names",
        "sbom/read.py",
        (("if recorded and hashlib.sha256(raw).hexdigest() != recorded:", "if False:"),),
        ("tests/test_sbom.py::test_an_altered_or_missing_sbom_is_refused_not_printed",),
    ),
    Mutation(
        "bytecode-check",
        "verify checks __pycache__: a planted or altered .pyc of a sealed module is a finding",
        "generations/inspection.py",
        (("    disk = walk(root, pycache=pycache)\n", "    disk = walk(root)\n"),),
        (
            "tests/test_bytecode.py::test_planted_pyc_with_the_sources_header_is_a_finding_and_repair_replaces_it",
        ),
    ),
    Mutation(
        "executable-signature",
        "run-executable runs nothing, and unpacks nothing, unless the file's signature is the key's",
        "bundle/exesign.py",
        (("    if not signing.verify(pem, data, sig):\n", "    if False:\n"),),
        ("tests/test_executable_python.py::test_a_bad_signature_is_refused_and_nothing_is_unpacked",),
    ),
    Mutation(
        "carried-python-relocatable",
        "pack --with-python refuses a tree that cannot move (an absolute RUNPATH, libpython outside it)",
        "bundle/carried.py",
        (("    return problems, needs\n", "    return [], needs\n"),),
        (
            "tests/test_executable_python.py::test_relocatability_is_decided_from_runpath_and_libpython",
            "tests/test_executable_python.py::test_this_host_s_pyenv_tree_is_refused_in_one_line",
        ),
    ),
    Mutation(
        "sbom-verify",
        "verify finds a generation's SBOM file missing or altered against its record's sbom_sha256",
        "sbom/sealed.py",
        (("        if actual == recorded:\n", "        if True:\n"),),
        (
            "tests/test_sbom_verify.py::test_an_altered_sbom_is_a_finding_and_repair_writes_back_the_same_bytes",
        ),
    ),
    Mutation(
        "sbom-repair-same-bytes",
        "deploy --repair writes back only the SBOM bytes the record names, else seals a new generation",
        "sbom/generation.py",
        (("    return raw if hashlib.sha256(raw).hexdigest() == recorded else None\n", "    return raw\n"),),
        (
            "tests/test_sbom_verify.py::test_an_sbom_that_cannot_be_built_again_is_left_and_a_new_generation_sealed",
        ),
    ),
    Mutation(
        "carried-stale-unpack",
        "a carried executable's next first run removes a killed run's .tmp-PID unpack directory",
        "bundle/executable.py",
        (('    rm -rf "$u"\n', "    :\n"),),
        (
            "tests/test_executable_python.py::test_a_killed_first_run_s_unpack_directory_goes_and_a_running_one_s_stays",
        ),
    ),
    Mutation(
        "carried-recent-unpack",
        "a carried executable leaves a recent .tmp-PID unpack directory whose PID it cannot see (another "
        "PID namespace or host sharing the cache)",
        "bundle/executable.py",
        ((' [ -z "$(find "$u" -maxdepth 0 -mmin +60 2>/dev/null)" ] ||\n', "\n"),),
        (
            "tests/test_executable_python.py::test_a_killed_first_run_s_unpack_directory_goes_and_a_running_one_s_stays",
        ),
    ),
    Mutation(
        "carried-running-unpack",
        "a carried executable never removes the .tmp-PID unpack directory of a first run still running",
        "bundle/executable.py",
        (('  kill -0 "$i" 2>/dev/null || [ -d "/proc/$i" ] || [ -z', "  [ -z"),),
        (
            "tests/test_executable_python.py::test_a_killed_first_run_s_unpack_directory_goes_and_a_running_one_s_stays",
        ),
    ),
    Mutation(
        "pylock-wheel-record",
        "verify --lock proves each installed file against its locked wheel's RECORD, not only the "
        "installed RECORD (which an edit can rewrite to match)",
        "verify/pylockcheck.py",
        (("        if actual != want:\n", "        if False:\n"),),
        ("tests/test_pylock.py::test_verify_lock_finds_a_file_whose_record_was_edited_to_match",),
    ),
    Mutation(
        "pylock-local-hash",
        "deploy --lock refuses a local wheel that is not the locked one, in one line, before uv runs",
        "project/pylock.py",
        (("    if digest.hexdigest() != wheel.sha256:\n", "    if False:\n"),),
        ("tests/test_pylock.py::test_a_wheel_that_is_not_the_locked_one_is_refused_in_one_line",),
    ),
    Mutation(
        "pylock-environments",
        "a PEP 751 lock whose environments do not include this interpreter and platform is refused",
        "project/pylock.py",
        (("    covered = not lock.environments or any(", "    covered = True or any("),),
        ("tests/test_pylock.py::test_a_lock_not_covering_this_interpreter_is_one_line_naming_both",),
    ),
    Mutation(
        "pylock-target-tags",
        "a pylock.toml's wheels are chosen by the target interpreter's own ABI (a free-threaded 3.13t)",
        "project/wheeltags.py",
        (
            (
                '    threading = "t" if facts.version >= (3, 13) and facts.gil_disabled else ""\n',
                '    threading = ""\n',
            ),
        ),
        (
            "tests/test_pylock_tags.py::test_a_free_threaded_313_is_told_from_the_normal_313",
            "tests/test_pylock_tags.py::test_a_cp313_wheel_is_refused_for_a_free_threaded_313_in_one_line",
        ),
    ),
    Mutation(
        "pylock-check-repair",
        "deploy --lock --check --repair verifies the live generation: a damaged one would be rebuilt",
        "deploy/pylockdeploy.py",
        (
            (
                "            found = _repair(layout, target, request, chosen, clean=False)\n",
                "            found = None\n",
            ),
        ),
        (
            "tests/test_pylock.py::"
            "test_check_repair_says_a_damaged_generation_would_be_rebuilt_and_writes_nothing",
        ),
    ),
    Mutation(
        "start-up-isolated",
        "venvkeeper starts under a PYTHONPATH naming another minor's standard library (no SRE mismatch)",
        "cli/main.py",
        (("        selfexec.isolate(sys.argv[1:])\n", "        pass\n"),),
        (
            "tests/test_foreign_pythonpath.py::test_a_shadowing_package_on_pythonpath_is_not_loaded",
            "tests/test_foreign_pythonpath.py::test_every_command_s_help_works_under_another_minor_s_stdlib",
        ),
    ),
    Mutation(
        "clean-interpreter-env",
        "an interpreter venvkeeper asks a question runs without the caller's PYTHONPATH and PYTHONHOME",
        "gateways/python.py",
        (("            env=clean_environ(env),\n", "            env=None if env is None else dict(env),\n"),),
        ("tests/test_foreign_pythonpath.py::test_interpreters_venvkeeper_asks_do_not_inherit_pythonpath",),
    ),
    Mutation(
        "stable-link-exact",
        "heal --link-root keeps the platform's working DIR/python3.X link and routes the environment through",
        "doctor/stablelink.py",
        (("    if not os.path.exists(stable):  # missing", "    if True:  # missing"),),
        ("tests/test_platform_heal.py::test_heal_keeps_the_platform_s_link_and_routes_through_it",),
    ),
    Mutation(
        "if-needed-minor",
        "heal --if-needed does not take an environment whose interpreter became another minor for healthy",
        "doctor/quickcheck.py",
        (("        or minors[0] not in _interpreter_minor(os.path.realpath(python))\n", ""),),
        ("tests/test_platform_heal.py::test_if_needed_does_not_take_a_broken_environment_for_a_healthy_one",),
    ),
    Mutation(
        "if-needed-through-link-root",
        "heal --if-needed under --link-root does not take a venv linked past DIR/python3.X for healthy",
        "doctor/quickcheck.py",
        (("            return target.startswith(stable)\n", "            return True\n"),),
        ("tests/test_platform_heal.py::test_the_quick_look_still_sends_a_broken_stdlib_venv_to_heal",),
    ),
    Mutation(
        "interpreter-link-dangling",
        "doctor names the platform's dangling DIR/python3.X link, not only what it breaks in the environment",
        "doctor/envfacts.py",
        (("        facts.interpreter_link = _dangling_minor_link(named)\n", "        pass\n"),),
        ("tests/test_platform_heal.py::test_doctor_names_the_platform_s_dangling_link_and_both_fixes",),
    ),
)


def run(mutation: Mutation) -> tuple[bool, str]:
    """Apply ``mutation``, run its tests, restore the file: (caught, pytest's last line)."""
    path = SRC / mutation.path
    original = path.read_text(encoding="utf-8")
    mutated = original
    for before, after in mutation.edits:
        count = mutated.count(before)
        if count != 1:
            raise SystemExit(f"{mutation.name}: the guarded code occurs {count} times in {path}, not once")
        mutated = mutated.replace(before, after)
    try:
        path.write_text(mutated, encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-n0", "-pno:cacheprovider", *mutation.tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        path.write_text(original, encoding="utf-8")
    lines = proc.stdout.splitlines()
    failed = next((line for line in lines if line.startswith(("FAILED ", "ERROR "))), "")
    last = next((line for line in reversed(lines) if line.strip()), "")
    return proc.returncode == 1, f"{failed} ({last})" if failed else last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    missed = 0
    for mutation in chosen:
        caught, last = run(mutation)
        missed += not caught
        verdict = "caught" if caught else "MISSED"
        print(f"{verdict}  {mutation.name}: {mutation.guard}\n        {last}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
