"""``pack --executable --with-python`` / ``--python-archive`` and ``--sign``: an executable that carries
its interpreter runs on a machine with no Python, and a signed one is checked before any of it runs.

No python-build-standalone archive can be downloaded here, so the carried interpreter is Debian's
own ``/usr/bin/python3.11`` with ``/usr/lib/python3.11``, laid out as an install_only archive
(``python/bin/python3``, ``python/lib/python3.11``) by :func:`carried.from_tree`: Debian links
libpython statically and has no RUNPATH, so the tree moves (it still loads libssl and friends from
the system, which the result reports). The fresh machine is simulated with ``unshare -m -n``: no
network, every python on the machine hidden (``/dev/null`` bound over ``/usr/bin/python3*``, an
empty tmpfs over pyenv and Debian's standard library), a PATH of the few tools a minimal machine
has (sh, tail, head, sha256sum, gzip, tar, ...) and a fresh HOME.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from support.environment import hermetic_environ
from support.index import LocalIndex
from support.projects import ProjectFactory
from venvkeeper.bundle import carried, elf, executable, exesign, pack
from venvkeeper.bundle.archive import BundleError
from venvkeeper.bundle.executable import CARRIED
from venvkeeper.core import signing
from venvkeeper.core.errors import ConfigError
from vk import commit_all

EXPECTED = "single 0.1.0 (tinyutil 1.1.0)"
DEBIAN_PYTHON = Path("/usr/bin/python3.11")
HERE = "%d.%d" % sys.version_info[:2]  # noqa: UP031

needs_debian_311 = pytest.mark.skipif(
    not DEBIAN_PYTHON.is_file() or HERE != "3.11",
    reason="the carried interpreter is Debian's /usr/bin/python3.11, for a bundle of this Python (3.11)",
)


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "-m", "-n", "sh", "-c", "mount -t tmpfs none /mnt"]
    return subprocess.run(probe, capture_output=True, check=False, timeout=30).returncode == 0


needs_unshare = pytest.mark.skipif(
    not _unshare_works(),
    reason="unshare -m -n with mounts is not permitted here (needs root or user namespaces)",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, project_factory: ProjectFactory) -> Path:
    """The ``single`` project, its script printing its arguments when it has some."""
    root = tmp_path_factory.mktemp("exepy")
    project = project_factory.create(root / "single", "single")
    module = project / "src" / "single" / "__init__.py"
    echo = "    if sys.argv[1:]:\n        print(sys.argv[1:])\n    return 0"
    module.write_text("import sys\n" + module.read_text().replace("    return 0", echo))
    commit_all(project)
    return project


@pytest.fixture(scope="module")
def environ(
    tmp_path_factory: pytest.TempPathFactory, index_server: LocalIndex, session_uv_cache: Path
) -> dict[str, str]:
    home = tmp_path_factory.mktemp("exepy-home")
    return hermetic_environ(os.environ, index_url=index_server.url, home=home, uv_cache_dir=session_uv_cache)


def _vk(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "venvkeeper", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def python_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's Python 3.11 as an install_only archive (see the module's docstring)."""
    if not DEBIAN_PYTHON.is_file():
        pytest.skip("no /usr/bin/python3.11 to carry")
    out = tmp_path_factory.mktemp("pbs") / "cpython-3.11-x86_64-unknown-linux-gnu-install_only.tar.gz"
    carried.from_tree(Path("/usr"), "3.11", out, mtime=0)
    return out


@pytest.fixture(scope="module")
def signed(
    tmp_path_factory: pytest.TempPathFactory, project: Path, environ: dict[str, str], python_archive: Path
) -> tuple[Path, Path]:
    """``pack --executable --python-archive A --sign KEY``: (the executable, the public key)."""
    root = tmp_path_factory.mktemp("signed")
    assert _vk(environ, "keygen", str(root / "key")).returncode == 0
    app = root / "single-app"
    packed = _vk(
        environ, "pack", str(project), "-o", str(app), "--executable",
        "--python-archive", str(python_archive), "--sign", str(root / "key"), "--json",
    )  # fmt: skip
    assert packed.returncode == 0, packed.stderr
    (root / "pack.json").write_text(packed.stdout)
    return app, root / "key.pub"


@needs_debian_311
def test_pack_reports_the_signature_and_the_carried_python(
    signed: tuple[Path, Path], python_archive: Path
) -> None:
    app, _ = signed
    payload = json.loads((app.parent / "pack.json").read_text())

    assert (payload["ok"], payload["executable"], payload["signed"]) == (True, True, True)
    assert payload["signature"] == f"{app}.sig" and len(Path(f"{app}.sig").read_bytes()) == 64
    python = payload["python"]
    assert (python["source"], python["version"], python["machine"]) == (str(python_archive), "3.11", "x86_64")
    assert python["size"] == python_archive.stat().st_size and "libssl.so.3" in python["needs"]


# uv's relocatable console scripts run "$(dirname -- "$(realpath -- "$0")")"/python: those two too.
_TOOLS = ("sh", "env", "tail", "head", "sha256sum", "gzip", "tar", "mkdir", "mv", "rm", "dirname", "realpath")


def _fresh_machine(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``argv`` on a simulated fresh machine: no network, no Python anywhere, an empty HOME."""
    home, tools = tmp_path / "fresh-home", tmp_path / "fresh-bin"
    home.mkdir(exist_ok=True)
    tools.mkdir(exist_ok=True)
    for tool in _TOOLS:  # a minimal machine's tools, and no python among them
        found = shutil.which(tool)
        assert found is not None, tool
        if not (tools / tool).exists():
            (tools / tool).symlink_to(found)
    hide = [
        "mount -t tmpfs none /root/.pyenv 2>/dev/null || true",
        'for f in /usr/bin/python3*; do mount --bind /dev/null "$f"; done',
        "mount -t tmpfs none /usr/lib/python3.11",
        "mount -t tmpfs none /usr/lib/python3",
        "if command -v python3 python3.11 python >/dev/null; then echo 'a python is left' >&2; exit 99; fi",
        't="$1"; shift; exec env -i PATH="$t" HOME="$0" "$@"',
    ]
    return subprocess.run(
        ["unshare", "-m", "-n", "sh", "-c", "; ".join(hide), str(home), str(tools), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@needs_debian_311
@needs_unshare
def test_a_carried_python_executable_runs_on_a_machine_without_python(
    signed: tuple[Path, Path], tmp_path: Path
) -> None:
    app = tmp_path / "single-app"
    shutil.copy2(signed[0], app)

    first = _fresh_machine(tmp_path, str(app), "--flag", "two words")
    warm = _fresh_machine(tmp_path, str(app), "again")

    assert (first.returncode, first.stderr) == (0, ""), first.stderr
    assert first.stdout.splitlines() == [EXPECTED, "['--flag', 'two words']"]
    assert (warm.returncode, warm.stdout.splitlines()) == (0, [EXPECTED, "['again']"]), warm.stderr
    cache = tmp_path / "fresh-home" / ".cache" / "venvkeeper"
    (python,) = (cache / "python").iterdir()  # unpacked once, no scratch left behind
    assert sorted(p.name for p in python.iterdir()) == ["python", "ready"]
    (venv_python,) = (cache / "apps").glob("*/venv/bin/python")
    assert os.path.realpath(venv_python).startswith(str(python))  # the app runs on the carried Python


@needs_unshare
def test_without_with_python_a_machine_without_python_cannot_run_it(
    signed: tuple[Path, Path], tmp_path: Path, project: Path, environ: dict[str, str]
) -> None:
    plain = tmp_path / "plain-app"
    assert _vk(environ, "pack", str(project), "-o", str(plain), "--executable").returncode == 0

    result = _fresh_machine(tmp_path, str(plain))

    assert result.returncode == 127, result.stderr  # /usr/bin/env finds no python3, as the issue says
    assert "python3" in result.stderr


def test_this_host_s_pyenv_tree_is_refused_in_one_line(
    tmp_path: Path, project: Path, environ: dict[str, str]
) -> None:
    prefix, version = carried.host_prefix()
    dynamic = elf.read_dynamic(prefix / "bin" / f"python{version}")
    if dynamic is None or not any(entry.startswith("/") for entry in dynamic.rpath):
        pytest.skip(f"{prefix} has no absolute RUNPATH: the refusal needs a pyenv-like build")
    out = tmp_path / "app"

    result = _vk(environ, "pack", str(project), "-o", str(out), "--executable", "--with-python")

    assert result.returncode == 2
    first, *rest = result.stderr.splitlines()
    assert first.startswith(
        f"error: {prefix}/bin/python{version}: its RUNPATH {prefix}/lib is a path on this host"
    )
    assert "the interpreter cannot be moved" in first
    assert rest and "--python-archive" in rest[0] and len(rest) == 1
    assert not out.exists()


def test_relocatability_is_decided_from_runpath_and_libpython() -> None:
    root = Path("/t")
    pbs = {
        "bin/python3.12": elf.Dynamic("x86_64", ("libpython3.12.so.1.0", "libc.so.6"), ("$ORIGIN/../lib",)),
        "lib/libpython3.12.so.1.0": elf.Dynamic("x86_64", ("libm.so.6", "libcrypt.so.1"), ()),
    }
    present = {"bin/python3.12", "lib/libpython3.12.so.1.0"}
    assert carried.relocatable_problems(root, pbs, present) == ([], {"libcrypt.so.1"})

    pyenv = {"bin/python3.12": elf.Dynamic("x86_64", ("libpython3.12.so.1.0",), ("/root/.pyenv/lib",))}
    outside = {"bin/python3.12": elf.Dynamic("x86_64", ("libpython3.12.so.1.0",), ())}
    leaves = {"bin/python3.12": elf.Dynamic("x86_64", (), ("${ORIGIN}/../../lib",))}

    (absolute, libpython), _ = carried.relocatable_problems(root, pyenv, present)
    assert absolute == (
        "/t/bin/python3.12: its RUNPATH /root/.pyenv/lib is a path on this host, not one relative to the file"
        " ($ORIGIN): the interpreter cannot be moved"
    )
    assert (
        libpython
        == "/t/bin/python3.12: links libpython3.12.so.1.0 from outside the tree /t: it cannot be moved"
    )
    assert carried.relocatable_problems(root, outside, present)[0] == [
        "/t/bin/python3.12: links libpython3.12.so.1.0 from outside the tree /t: it cannot be moved"
    ]
    assert carried.relocatable_problems(root, leaves, present)[0] == [
        "/t/bin/python3.12: its RUNPATH ${ORIGIN}/../../lib leaves the tree /t"
    ]


@needs_debian_311
def test_the_carried_archive_is_a_stored_entry_the_sh_program_points_at(
    python_archive: Path, tmp_path: Path, signed: tuple[Path, Path]
) -> None:
    app, _ = signed
    raw = app.read_bytes()
    archive = python_archive.read_bytes()
    with zipfile.ZipFile(app) as zf:
        assert zf.namelist() == ["__main__.py", "app.json", "bundle.tar.gz", CARRIED]
        assert zf.read(CARRIED) == archive
    head = raw[:2048].decode(errors="replace")
    fields = dict(word.split("=", 1) for word in head.splitlines()[3].split())
    offset, size = int(fields["o"]), int(fields["n"])
    assert raw[offset : offset + size] == archive
    assert head.startswith("#!/bin/sh\n")


@needs_debian_311
def test_an_archive_of_another_python_is_refused(python_archive: Path, tmp_path: Path) -> None:
    got = carried.from_archive(python_archive, tmp_path / "unpacked")
    assert (got.version, got.machine) == ("3.11", "x86_64")
    assert "libssl.so.3" in got.needs  # Debian's _ssl loads the system's

    other = carried.CarriedPython(python_archive, got.sha256, got.size, "3.12", "x86_64", "a.tar.gz", ())
    target = {"python": "3.11", "implementation": "cp", "platforms": ["manylinux_2_17_x86_64"]}
    executable._check_carried(got, target)
    with pytest.raises(
        ConfigError, match=r"a\.tar\.gz: is Python 3\.12; the bundle is for Python 3\.11 \(cp\)"
    ):
        executable._check_carried(other, target)
    with pytest.raises(ConfigError, match=r"a Linux x86_64 interpreter; the bundle is for macosx_11_0_arm64"):
        executable._check_carried(got, {**target, "platforms": ["macosx_11_0_arm64"]})


# -- signatures ------------------------------------------------------------------------------------


def _run_signed(
    environ: dict[str, str], cache: Path, app: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return _vk({**environ, "XDG_CACHE_HOME": str(cache)}, "run-executable", str(app), *args)


@needs_debian_311
def test_a_good_signature_runs_the_program(
    signed: tuple[Path, Path], tmp_path: Path, environ: dict[str, str]
) -> None:
    app, public = signed

    result = _run_signed(environ, tmp_path / "cache", app, "--public-key", str(public), "--", "--flag")
    checked = _run_signed(environ, tmp_path / "none", app, "--public-key", str(public), "--verify-only")

    assert (result.returncode, result.stdout.splitlines()) == (0, [EXPECTED, "['--flag']"]), result.stderr
    assert (checked.returncode, checked.stdout) == (0, f"{app}: signature good ({app}.sig, key {public})\n")
    assert not (tmp_path / "none").exists()


@needs_debian_311
@pytest.mark.parametrize(
    "damage", ["a changed byte", "another key", "no signature file", "a short signature"]
)
def test_a_bad_signature_is_refused_and_nothing_is_unpacked(
    signed: tuple[Path, Path], tmp_path: Path, environ: dict[str, str], damage: str
) -> None:
    source, public = signed
    app = tmp_path / source.name
    shutil.copy2(source, app)
    shutil.copy2(f"{source}.sig", f"{app}.sig")
    if damage == "a changed byte":
        data = bytearray(app.read_bytes())
        data[len(data) // 2] ^= 0x01
        app.write_bytes(bytes(data))
    elif damage == "another key":
        assert _vk(environ, "keygen", str(tmp_path / "other")).returncode == 0
        public = tmp_path / "other.pub"
    elif damage == "no signature file":
        Path(f"{app}.sig").unlink()
    else:
        Path(f"{app}.sig").write_bytes(Path(f"{app}.sig").read_bytes()[:63])
    cache, scratch = tmp_path / "cache", tmp_path / "tmp"
    scratch.mkdir()

    result = _vk(
        {**environ, "XDG_CACHE_HOME": str(cache), "TMPDIR": str(scratch)},
        "run-executable", str(app), "--public-key", str(public),
    )  # fmt: skip
    verify_only = _run_signed(environ, cache, app, "--public-key", str(public), "--verify-only")

    assert result.returncode == verify_only.returncode == 2
    assert result.stdout == ""
    error = result.stderr.splitlines()[0]
    assert error.startswith("error: ") and "refused" in error and "nothing was run" in error, error
    assert not cache.exists()
    assert list(scratch.iterdir()) == []  # not even the private copy was written


@needs_debian_311
def test_openssl_checks_the_signature_without_venvkeeper(signed: tuple[Path, Path], tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl on this machine")
    app, public = signed
    argv = [
        openssl,
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        str(public),
        "-rawin",
        "-sigfile",
        f"{app}.sig",
    ]

    good = subprocess.run([*argv, "-in", str(app)], capture_output=True, text=True, check=False)
    tampered = tmp_path / "tampered"
    tampered.write_bytes(app.read_bytes() + b"\n")
    bad = subprocess.run([*argv, "-in", str(tampered)], capture_output=True, text=True, check=False)

    assert (good.returncode, good.stdout.strip()) == (0, "Signature Verified Successfully"), good.stderr
    assert bad.returncode != 0


@needs_debian_311
def test_two_first_runs_at_once_unpack_the_python_once(signed: tuple[Path, Path], tmp_path: Path) -> None:
    app, _ = signed
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = [
        subprocess.Popen([str(app)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = [(run.communicate(timeout=300), run.returncode) for run in runs]

    for (out, err), code in outcomes:
        assert (code, out.strip()) == (0, EXPECTED), err
    (python,) = (tmp_path / "cache" / "venvkeeper" / "python").iterdir()
    assert sorted(p.name for p in python.iterdir()) == ["python", "ready"]


def _python_key(app: Path) -> str:
    """The carried interpreter's directory name in the cache (``q`` on the sh program's fourth line)."""
    head = app.read_bytes()[:2048].decode(errors="replace")
    return dict(word.split("=", 1) for word in head.splitlines()[3].split())["q"]


@needs_debian_311
def test_a_killed_first_run_s_unpack_directory_goes_and_a_running_one_s_stays(
    signed: tuple[Path, Path], tmp_path: Path
) -> None:
    """A first run killed while unpacking left ``<q>.tmp-PID``: the next run removes it as PID is gone
    and it has not changed for an hour; a ``.tmp-PID`` of a process still running (a first run at the
    same time) is left to it, and so is a recent one whose PID is not seen here (a first run in
    another PID namespace or on another host sharing the cache)."""
    app, _ = signed
    pythons = tmp_path / "cache" / "venvkeeper" / "python"
    key = _python_key(app)
    reaped = subprocess.Popen(["true"])
    reaped.wait()
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        assert not Path(f"/proc/{reaped.pid}").exists() and Path(f"/proc/{sleeper.pid}").exists()
        killed, running = pythons / f"{key}.tmp-{reaped.pid}", pythons / f"{key}.tmp-{sleeper.pid}"
        # Above pid_max: no process here ever has it (one in another PID namespace), changed a minute ago.
        unseen = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
        elsewhere = pythons / f"{key}.tmp-{unseen}"
        hours_ago, minute_ago = time.time() - 2 * 3600, time.time() - 60
        for partial, when in ((killed, hours_ago), (running, hours_ago), (elsewhere, minute_ago)):
            (partial / "python" / "bin").mkdir(parents=True)
            (partial / "python.tar.gz").write_bytes(b"half of it")
            os.utime(partial, (when, when))
        result = subprocess.run(
            [str(app)],
            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        left = sorted(p.name for p in pythons.iterdir())
    finally:
        sleeper.kill()
        sleeper.wait()

    assert (result.returncode, result.stdout.strip()) == (0, EXPECTED), result.stderr
    assert left == sorted([key, running.name, elsewhere.name])
    assert (running / "python.tar.gz").read_bytes() == b"half of it"
    assert sorted(p.name for p in (pythons / key).iterdir()) == ["python", "ready"]


@needs_debian_311
def test_a_damaged_carried_python_is_refused_and_not_unpacked(
    signed: tuple[Path, Path], tmp_path: Path
) -> None:
    source, _ = signed
    app = tmp_path / source.name
    with zipfile.ZipFile(source) as zf:
        info = zf.getinfo(CARRIED)
    data = bytearray(source.read_bytes())
    head = data[:2048].decode(errors="replace")
    offset = int(dict(word.split("=", 1) for word in head.splitlines()[3].split())["o"])
    data[offset + info.file_size // 2] ^= 0xFF
    app.write_bytes(bytes(data))
    app.chmod(0o755)
    cache = tmp_path / "cache"

    result = subprocess.run(
        [str(app)],
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
        capture_output=True,
        text=True,
        check=False,
    )

    assert (result.returncode, result.stderr) == (
        2,
        f"error: {app.name}: the carried Python is damaged: get a fresh copy\n",
    )
    assert list((cache / "venvkeeper" / "python").iterdir()) == []
    assert not (cache / "venvkeeper" / "apps").exists()


def test_a_signed_file_that_is_no_executable_is_not_run(tmp_path: Path) -> None:
    private, public = signing.generate_keypair()
    (tmp_path / "key.pub").write_bytes(public)
    script = tmp_path / "script.py"
    script.write_text("print('ran')\n")
    exesign.sign_file(script, private)

    with (
        pytest.raises(BundleError, match=r"script\.py: signed, but not a pack --executable file"),
        exesign.verified_copy(script, tmp_path / "key.pub", None),
    ):
        pass
    assert exesign.verify_file(script, tmp_path / "key.pub", None).size == len("print('ran')\n")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"with_python": True}, "--with-python and --python-archive are for --executable"),
        (
            {"executable": True, "with_python": True, "python_archive": Path("a.tar.gz")},
            "--with-python and --python-archive: each names the interpreter to carry",
        ),
    ],
)
def test_the_carried_python_options_are_checked_first(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        pack.pack(tmp_path, tmp_path / "out", **options)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "link"),
    [
        ("python/../evil", None),
        ("/python/bin/x", None),
        ("other/bin/python3", None),
        ("python/bin/x", "/etc/passwd"),
    ],
)
def test_an_archive_with_a_name_or_link_outside_python_is_refused(
    tmp_path: Path, name: str, link: str | None
) -> None:
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        if link is not None:
            info.type, info.linkname = tarfile.SYMTYPE, link
        tar.addfile(info, io.BytesIO(b""))

    with pytest.raises(BundleError, match=r"is not a file under python/ \(or its link leaves it\)"):
        carried.from_archive(archive, tmp_path / "unpacked")
    assert not (tmp_path / "unpacked").exists() or list((tmp_path / "unpacked").iterdir()) == []


@needs_debian_311
def test_without_home_a_carried_executable_says_so_in_one_line(signed: tuple[Path, Path]) -> None:
    app, _ = signed
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CACHE_HOME")}

    result = subprocess.run([str(app)], env=env, capture_output=True, text=True, check=False, timeout=60)

    assert (result.returncode, result.stderr) == (
        2,
        f"error: {app.name}: HOME is not set: set HOME or XDG_CACHE_HOME\n",
    )
