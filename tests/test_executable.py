"""``pack --executable``: one runnable file that installs itself on first run into a content-addressed
cache (with the index down, atomically, once when two first runs race) and then just execs the script."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from support.environment import hermetic_environ
from support.index import LocalIndex
from support.projects import ProjectFactory
from venvkeeper.bundle import archive as bundle
from venvkeeper.bundle import bootstrap, executable, writer
from venvkeeper.bundle.archive import BundleError
from venvkeeper.bundle.executable import make_executable
from venvkeeper.core.errors import ConfigError
from vk import commit_all

EXPECTED = "single 0.1.0 (tinyutil 1.1.0)"


@pytest.fixture(scope="module")
def packed(
    tmp_path_factory: pytest.TempPathFactory,
    project_factory: ProjectFactory,
    index_server: LocalIndex,
    session_uv_cache: Path,
) -> Path:
    """The ``single`` project packed ``--with-uv`` once for the module (a pack takes seconds).

    Its script also prints its arguments when it is given some.
    """
    root = tmp_path_factory.mktemp("executable")
    project = project_factory.create(root / "single", "single")
    module = project / "src" / "single" / "__init__.py"
    echo = "    if sys.argv[1:]:\n        print(sys.argv[1:])\n    return 0"
    module.write_text("import sys\n" + module.read_text().replace("    return 0", echo))
    commit_all(project)
    environ = hermetic_environ(
        os.environ, index_url=index_server.url, home=root / "home", uv_cache_dir=session_uv_cache
    )
    out = root / "app.tar.gz"
    subprocess.run(
        [sys.executable, "-m", "venvkeeper", "pack", str(project), "-o", str(out), "--with-uv"],
        env=environ,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


@pytest.fixture
def app(packed: Path, tmp_path: Path) -> Path:
    """The executable, its Python this interpreter (the bundle's), so it runs as ./app."""
    exe = tmp_path / "single-app"
    make_executable(packed, exe, script="single", python=sys.executable)
    return exe


def _prefix(exe: Path) -> bytes:
    """The executable's sh program: everything before the zip's first entry."""
    with zipfile.ZipFile(exe) as zf:
        return exe.read_bytes()[: min(info.header_offset for info in zf.infolist())]


def _rewrite(exe: Path, name: str, data: bytes) -> None:
    """Replace one entry of the executable, keeping its sh prefix and the other entries."""
    prefix = _prefix(exe)
    with zipfile.ZipFile(exe) as zf:
        entries = [(info, data if info.filename == name else zf.read(info)) for info in zf.infolist()]
    with exe.open("wb") as fh:
        fh.write(prefix)
        with zipfile.ZipFile(fh, "w") as zf:
            for info, content in entries:
                zf.writestr(info, content)


def _run(exe: Path, cache: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(exe), *args],
        env={**os.environ, "XDG_CACHE_HOME": str(cache), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _home(cache: Path, bundle_path: Path) -> Path:
    return cache / "venvkeeper" / "apps" / hashlib.sha256(bundle_path.read_bytes()).hexdigest()[:32]


def _entries(cache: Path) -> list[str]:
    apps = cache / "venvkeeper" / "apps"
    return sorted(p.name for p in apps.iterdir()) if apps.is_dir() else []


def test_the_first_run_installs_with_the_index_down_and_runs_the_script(
    app: Path, packed: Path, tmp_path: Path, index: LocalIndex
) -> None:
    index.stop()
    cache = tmp_path / "cache"

    result = _run(app, cache)

    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, EXPECTED, "")
    home = _home(cache, packed)
    assert _entries(cache) == [home.name, f"{home.name}.lock"]  # no scratch left behind
    assert sorted(p.name for p in home.iterdir()) == ["ready", "venv"]
    assert app.stat().st_mode & 0o777 == 0o755


def test_a_later_run_execs_at_once_without_installing(app: Path, packed: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    started = time.monotonic()
    first = _run(app, cache)
    first_s = time.monotonic() - started
    home = _home(cache, packed)
    before = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in (home, home / "ready", home / "venv")]
    _rewrite(app, "bundle.tar.gz", b"")  # a later run reads neither the bundle nor app.json
    _rewrite(app, "app.json", b"")

    started = time.monotonic()
    second = _run(app, cache)
    second_s = time.monotonic() - started

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert second.stdout.strip() == EXPECTED
    assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in (home, home / "ready", home / "venv")] == before
    assert second_s < first_s, (first_s, second_s)


def _fake_python(tmp_path: Path) -> str:
    """A PATH whose first python3 fails loudly, naming its arguments: it shows who starts Python."""
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "python3").write_text('#!/bin/sh\necho "fake python3 ran: $*" >&2\nexit 99\n')
    (fake / "python3").chmod(0o755)
    return f"{fake}{os.pathsep}{os.environ['PATH']}"


def test_a_warm_run_execs_the_script_without_starting_python(app: Path, packed: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert _run(app, cache).returncode == 0  # installed by this interpreter
    plain = tmp_path / "plain-app"
    make_executable(packed, plain, script="single")  # the default: /usr/bin/env python3
    path = _fake_python(tmp_path)

    warm = _run(plain, cache, "--flag", PATH=path, VENVKEEPER_APP_REEXEC="1")
    cold = _run(plain, tmp_path / "empty", "--flag", PATH=path)
    missing = _run(plain, tmp_path / "empty", PATH=str(tmp_path / "nothing"))

    assert (warm.returncode, warm.stdout.splitlines(), warm.stderr) == (0, [EXPECTED, "['--flag']"], "")
    assert (cold.returncode, cold.stdout, cold.stderr) == (99, "", f"fake python3 ran: {plain} --flag\n")
    assert missing.returncode == 127  # as under #!/usr/bin/env python3: env finds no python3
    assert not (tmp_path / "empty").exists()


def test_a_relative_xdg_cache_home_is_ignored_for_home_s_cache(
    app: Path, packed: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    assert _run(app, home / ".cache").returncode == 0  # installed where HOME's cache is
    decoy = _home(tmp_path / "relative", packed)  # what XDG_CACHE_HOME=relative would name, from tmp_path
    (decoy / "venv" / "bin").mkdir(parents=True)
    (decoy / "ready").write_text("{}\n")
    (decoy / "venv" / "bin" / "python").symlink_to(sys.executable)
    (decoy / "venv" / "bin" / "single").write_text("#!/bin/sh\necho decoy\n")
    (decoy / "venv" / "bin" / "single").chmod(0o755)
    plain = tmp_path / "plain-app"
    make_executable(packed, plain, script="single")
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": "relative", "PATH": _fake_python(tmp_path)}

    result = subprocess.run(
        [str(plain)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )

    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, EXPECTED, "")


@pytest.mark.parametrize("home", [None, ""])
def test_without_home_the_lookup_is_left_to_python(packed: Path, tmp_path: Path, home: str | None) -> None:
    """With HOME unset (or empty) the sh prefix cannot name the cache: Python does (from passwd)."""
    plain = tmp_path / "plain-app"
    make_executable(packed, plain, script="single")
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CACHE_HOME")}
    env["PATH"] = _fake_python(tmp_path)
    if home is not None:
        env["HOME"] = home

    result = subprocess.run(
        [str(plain), "x"], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert (result.returncode, result.stderr) == (99, f"fake python3 ran: {plain} x\n")


def test_two_first_runs_at_once_both_succeed_and_install_once(
    app: Path, packed: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    runs = [
        subprocess.Popen(
            [str(app)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    outcomes = [(run.communicate(timeout=120), run.returncode) for run in runs]

    for (out, err), code in outcomes:
        assert (code, out.decode().strip()) == (0, EXPECTED), err.decode()
    home = _home(cache, packed)
    assert _entries(cache) == [home.name, f"{home.name}.lock"]


def test_arguments_reach_the_script(app: Path, tmp_path: Path) -> None:
    result = _run(app, tmp_path / "cache", "--flag", "two words", "")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [EXPECTED, "['--flag', 'two words', '']"]


def test_a_damaged_executable_fails_in_one_line_and_installs_nothing(
    app: Path, packed: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(app) as zf:
        info = zf.getinfo("bundle.tar.gz")
    data = bytearray(app.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len  # the bundle's first byte
    data[start + info.file_size // 2] ^= 0xFF
    app.write_bytes(bytes(data))
    cache = tmp_path / "cache"

    result = _run(app, cache)

    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {app.name}: {app}: the embedded bundle.tar.gz")
    assert "the file is damaged" in line
    assert not _home(cache, packed).exists()
    assert _entries(cache) == [f"{_home(cache, packed).name}.lock"]


def test_a_killed_first_run_is_swept_and_a_half_built_dir_replaced(
    app: Path, packed: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    home = _home(cache, packed)
    (home.parent / f"{home.name}.tmp-999999" / "venv").mkdir(parents=True)
    (home / "venv").mkdir(parents=True)  # no ready: not to be trusted

    result = _run(app, cache)

    assert result.returncode == 0, result.stderr
    assert _entries(cache) == [home.name, f"{home.name}.lock"]
    assert (home / "ready").is_file()


def test_another_python_minor_is_refused_naming_both(app: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(app) as zf:
        meta = json.loads(zf.read("app.json"))
    meta["target"]["python"] = "3.10"
    _rewrite(app, "app.json", json.dumps(meta).encode())
    cache = tmp_path / "cache"
    shims = tmp_path / "shims"  # a pyenv shim, say: it does not run, so it is not re-exec'd under
    shims.mkdir()
    (shims / "python3.10").write_text(
        "#!/bin/sh\necho 'pyenv: python3.10: command not found' >&2\nexit 127\n"
    )
    (shims / "python3.10").chmod(0o755)

    result = _run(app, cache, PATH=str(shims))

    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    here = "%d.%d" % sys.version_info[:2]  # noqa: UP031
    assert f"the bundle is for Python 3.10 (cp); {sys.executable} is Python {here} (cp)" in line
    assert not cache.exists()


def test_the_same_bundle_makes_the_same_bytes(packed: Path, tmp_path: Path) -> None:
    make_executable(packed, tmp_path / "a", script="single")
    make_executable(packed, tmp_path / "b", script="single")

    raw = (tmp_path / "a").read_bytes()
    assert raw == (tmp_path / "b").read_bytes()
    prefix = _prefix(tmp_path / "a")
    assert prefix.startswith(b"#!/bin/sh\n")
    assert prefix.endswith(b'\nexec /usr/bin/env python3 "$0" "$@"\n')  # the default interpreter
    with zipfile.ZipFile(tmp_path / "a") as zf:
        assert zf.namelist() == ["__main__.py", "app.json", "bundle.tar.gz"]
        assert zf.read("bundle.tar.gz") == packed.read_bytes()
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        key = hashlib.sha256(packed.read_bytes()).hexdigest()
        assert json.loads(zf.read("app.json"))["key"] == key
        assert f"\n_BAKED: tuple[str, str] | None = ('{key}', 'single')\n" in zf.read("__main__.py").decode()


def test_a_bundle_without_uv_or_script_is_refused(packed: Path, tmp_path: Path) -> None:
    checked = bundle.read_bundle(packed, public_key=None)
    bundle.extract(packed, checked, tmp_path)
    files: dict[str, bytes | Path] = {
        rel: tmp_path / rel for rel in checked.files if rel not in (bundle.MANIFEST, bundle.EXECUTABLE)
    }
    plain = tmp_path / "plain.tar.gz"
    with plain.open("wb") as fh:
        writer.write_bundle(fh, files, {**checked.manifest, "files": writer.describe(files)}, mtime=0)

    with pytest.raises(BundleError, match=r"carries no uv .*: the executable installs with it"):
        make_executable(plain, tmp_path / "a", script="single")
    message = r"no bundled wheel has a console script 'nope' \(the members have: single\)"
    with pytest.raises(ConfigError, match=message):
        make_executable(packed, tmp_path / "a", script="nope")
    with pytest.raises(ConfigError, match="cannot follow #!"):
        make_executable(packed, tmp_path / "a", script="single", python="python3")
    with pytest.raises(BundleError, match=r"zipimport reads no zip64 archive before Python 3\.13"):
        executable._check_zipimport_limit(packed, 3 << 30, "3.12")
    executable._check_zipimport_limit(packed, 3 << 30, "3.13")
    assert executable.default_script(packed) == "single"
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("script", ["", "a b", "$(id)", "x'y", "a/b", ".", "..", "-x", "s\u00e9", "a;b"])
def test_a_script_name_unsafe_in_the_sh_prefix_is_refused(packed: Path, tmp_path: Path, script: str) -> None:
    with pytest.raises(ConfigError, match="is not a console script name the executable can run"):
        make_executable(packed, tmp_path / "a", script=script)
    assert not (tmp_path / "a").exists()


def test_the_bootstrap_is_stdlib_python_3_8() -> None:
    """The bundle's Python may be older than venvkeeper's: the module must parse there, and the
    bootstrap must not need venvkeeper (it imports nothing of it; the build side is executable.py)."""
    source = Path(bootstrap.__file__).read_text()
    tree = ast.parse(source, feature_version=(3, 8))
    top = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    top |= {n.module or "" for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert top == {"__future__", "os", "sys"}
    assert (bootstrap._TOP, bootstrap._UV) == (bundle.TOP, bundle.EXECUTABLE)
