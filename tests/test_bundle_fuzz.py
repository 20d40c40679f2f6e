"""Property-based fuzzing of everything install reads before it writes: the archive, the manifest's
fields and the ``pylock.toml``.

The property, for any input: install's two passes (:func:`bundle.read_bundle`, then
:func:`bundle.extract` into a scratch directory) raise nothing but :class:`bundle.BundleError`
(the one error line, exit 2, naming the bundle), the first pass writes nothing at all, and the
second writes only the checked files into the scratch directory, which install then removes. And
when a bundle is accepted, what it accepted is safe: every artifact of its lock is one of its own
listed wheels, and every manifest field has the type install uses.

Reproducible in CI: ``derandomize=True`` and no example database, so every run tries the same
inputs; the example counts keep the module at about a minute.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import re
import shutil
import tarfile
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from support import bundles
from venvkeeper.bundle.archive import (
    MANIFEST,
    MAX_TRAILER,
    PYLOCK,
    TOP,
    BundleError,
    CheckedBundle,
    extract,
    read_bundle,
)
from venvkeeper.bundle.check import ManifestFields
from venvkeeper.core.exitcodes import ExitCode
from vk import snapshot

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the autouse hermetic environment: unused here
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

WHEEL_NAME = "tiny-1.0-py3-none-any.whl"
WHEEL = f"wheels/{WHEEL_NAME}"
SDIST = "wheels/tiny-1.0.tar.gz"
LONG = f"wheels/{'l' * 110}-1.0-py3-none-any.whl"  # over ustar's 100: a pax path header
CONTENT = {
    WHEEL: b"PK\x03\x04 the wheel's bytes\n",
    SDIST: b"an sdist's bytes\n",
    LONG: b"PK\x03\x04 a wheel with a long name\n",
    "uv/uv": b"#!/bin/sh\n",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _good_lock() -> bytes:
    wheels = ", ".join(
        bundles.wheel_entry(rel.removeprefix("wheels/"), CONTENT[rel]) for rel in (WHEEL, LONG)
    )
    sdist = bundles.wheel_entry(SDIST.removeprefix("wheels/"), CONTENT[SDIST])
    return bundles.pylock([bundles.package("tiny", "1.0", sdist=sdist, wheels=f"[{wheels}]")])


FILES = {**CONTENT, PYLOCK: _good_lock()}


def _manifest(files: Mapping[str, bytes] = FILES) -> dict[str, Any]:
    return bundles.manifest_for(
        files,
        members=[WHEEL_NAME],
        hooks={"post-deploy": ["echo deployed"], "timeout": 900},
        groups=["web"],
    )


def _tar_with_pax(files: Mapping[str, bytes], manifest: bytes) -> bytes:
    """The bundle's archive as tarfile writes it (pax path for the long name, record padding)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, data in sorted({MANIFEST: manifest, **files}.items()):
            info = tarfile.TarInfo(f"{TOP}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


BASE_TAR = _tar_with_pax(FILES, bundles.manifest_json(_manifest()))
BASE_GZ = bundles.gz(BASE_TAR)
HEADERS = [
    offset for offset in range(0, len(BASE_TAR), 512) if BASE_TAR[offset + 257 : offset + 262] == b"ustar"
]


# -- the property -----------------------------------------------------------------------------


def _install_passes(data: bytes) -> tuple[CheckedBundle, Mapping[str, bytes]] | str:
    """install's two passes over a bundle of these bytes, in a fresh directory: the accepted
    bundle and its extracted files, or the refusal's message (one line, as it must be)."""
    with tempfile.TemporaryDirectory(prefix="vk-fuzz-") as tmp:
        root = Path(tmp)
        bundle = root / "b.tar.gz"
        bundle.write_bytes(data)
        (root / "srv").mkdir()
        (root / "srv" / "keep").write_text("the environment's parent\n")
        before = snapshot(root)
        try:
            checked = read_bundle(bundle, public_key=None)
        except BundleError as exc:
            assert exc.exit_code == ExitCode.BAD_INPUT
            assert exc.message.startswith(f"{bundle}: ") or exc.message.startswith(f"{bundle} "), exc.message
            assert "\n" not in exc.message and "\r" not in exc.message, exc.message
            assert len(exc.message) < 1000, exc.message
            assert snapshot(root) == before
            return exc.message.removeprefix(f"{bundle}: ")
        assert snapshot(root) == before, "the first pass wrote something"
        scratch = Path(tempfile.mkdtemp(prefix="bundle-", dir=root / "srv"))
        extract(bundle, checked, scratch)  # the same bytes: the second pass must agree
        extracted = {
            str(path.relative_to(scratch)): path.read_bytes()
            for path in sorted(scratch.rglob("*"))
            if not path.is_dir()
        }
        assert not any(path.is_symlink() for path in scratch.rglob("*"))
        assert set(extracted) == set(checked.files)
        for rel, content in extracted.items():
            assert checked.files[rel] == (len(content), _sha(content))
        shutil.rmtree(scratch)  # as install does, in a finally
        assert snapshot(root) == before, "something was written outside the scratch directory"
        return checked, extracted


def _assert_safe(checked: CheckedBundle, extracted: Mapping[str, bytes]) -> None:
    """What an accepted bundle installs is its own: an oracle independent of bundlecheck's code."""
    fields = checked.fields
    assert isinstance(fields, ManifestFields)
    for text in (fields.project_name, fields.project_version, fields.python, fields.implementation):
        assert isinstance(text, str) and text.isprintable()
    assert all(isinstance(t, str) and t.isprintable() for t in (*fields.platforms, *fields.groups))
    assert all(f"wheels/{member}" in extracted for member in fields.members)
    assert all(isinstance(c, str) and "\0" not in c for c in fields.post_deploy)
    assert isinstance(fields.hook_timeout, float) and 0 < fields.hook_timeout < math.inf
    lock = tomllib.loads(extracted[PYLOCK].decode())
    for package in lock.get("packages", []):
        assert "vcs" not in package and "directory" not in package
        wheels = package.get("wheels", [])
        artifacts = [package[k] for k in ("sdist", "archive") if k in package] + list(wheels)
        assert artifacts
        for artifact in artifacts:
            assert "url" not in artifact
            path = artifact["path"]
            assert path.startswith("wheels/") and path in extracted
            assert artifact["hashes"]["sha256"] == _sha(extracted[path])


def _check(data: bytes) -> bool:
    """The property for one input; whether the bundle was accepted."""
    outcome = _install_passes(data)
    if isinstance(outcome, str):
        # What was reached, for --hypothesis-show-statistics: refusals by their cause.
        event(re.sub(r"\d+|'[^']*'", "N", outcome)[:70])
        return False
    _assert_safe(*outcome)
    event("accepted")
    return True


# -- the archive --------------------------------------------------------------------------------

# (offset, length) of each ustar header field, and values worth trying in it.
FIELDS = {
    "name": (0, 100),
    "mode": (100, 8),
    "uid": (108, 8),
    "size": (124, 12),
    "mtime": (136, 12),
    "chksum": (148, 8),
    "type": (156, 1),
    "linkname": (157, 100),
    "magic": (257, 8),
    "prefix": (345, 155),
}
INTERESTING = [
    b"",
    b"\0",
    b"77777777777\0",
    b"-1\0",
    b"\x80\0\0\0\0\0\0\x01\0\0\0\0",  # base-256: 2**32 * 256
    b"\xff" * 12,
    b"99999999999\0",
    *(bytes([t]) for t in b"0123456789gxLKSAV"),
    b"../../etc/passwd",
    b"/etc/passwd",
    f"{TOP}/../x".encode(),
    f"{TOP}/{PYLOCK}".encode(),
    f"{TOP}/{MANIFEST}".encode(),
    f"{TOP}/manifest.json.sig".encode(),
    f"{TOP}/wheels".encode(),
    f"{TOP}/".encode(),
    b"ustar\x0000",
    b"ustar  \0",
]


def _checksum(header: bytearray) -> None:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)


@st.composite
def header_mutation(draw: st.DrawFn) -> bytes:
    tar = bytearray(BASE_TAR)
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.sampled_from(HEADERS))
        offset, length = FIELDS[draw(st.sampled_from(sorted(FIELDS)))]
        value = draw(st.sampled_from(INTERESTING) | st.binary(max_size=length))[:length]
        if draw(st.booleans()):  # the field's end NUL-padded, or left as it was
            tar[start + offset : start + offset + length] = value.ljust(length, b"\0")
        else:
            tar[start + offset : start + offset + len(value)] = value
        if draw(st.booleans()):  # a valid checksum takes the mutation past the header check
            header = tar[start : start + 512]
            _checksum(header)
            tar[start : start + 512] = header
    return bundles.gz(bytes(tar))


def _flipped(base: bytes, flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(base)
    for offset, mask in flips:
        data[offset % len(data)] ^= mask
    return bytes(data)


def _blocks_moved(tar: bytes, moves: list[tuple[int, int, bool]]) -> bytes:
    """Blocks copied over others, or swapped: entries duplicated, reordered or cut short."""
    blocks = [tar[i : i + 512] for i in range(0, len(tar), 512)]
    for source, dest, swap in moves:
        s, d = source % len(blocks), dest % len(blocks)
        if swap:
            blocks[s], blocks[d] = blocks[d], blocks[s]
        else:
            blocks.insert(d, blocks[s])
    return b"".join(blocks)


flips = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), min_size=1, max_size=4)
tails = st.binary(max_size=600) | st.builds(
    lambda n, b: b"\0" * n + b, st.integers(0, 40 * 512), st.binary(max_size=2)
)
ARCHIVES = st.one_of(
    flips.map(lambda f: _flipped(BASE_GZ, f)),
    flips.map(lambda f: bundles.gz(_flipped(BASE_TAR, f))),
    st.integers(0, len(BASE_GZ) - 1).map(lambda n: BASE_GZ[:n]),
    st.integers(0, len(BASE_TAR) - 1).map(lambda n: bundles.gz(BASE_TAR[:n])),
    tails.map(lambda t: bundles.gz(BASE_TAR + t)),
    tails.map(lambda t: BASE_GZ + t),
    tails.map(lambda t: BASE_GZ + bundles.gz(t)),
    header_mutation(),
    st.lists(st.tuples(st.integers(0, 999), st.integers(0, 999), st.booleans()), min_size=1, max_size=3).map(
        lambda m: bundles.gz(_blocks_moved(BASE_TAR, m))
    ),
    st.binary(max_size=2000),
)


@settings(FUZZ, max_examples=3000)
@given(data=ARCHIVES)
def test_any_archive_is_refused_in_one_line_or_installs_only_its_own_files(data: bytes) -> None:
    if _check(data):
        # Accepted: what followed the last entry was zeros, no more than a tar record pads with.
        raw = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            last = tar.getmembers()[-1]
        end = last.offset_data + last.size + -last.size % tarfile.BLOCKSIZE
        assert len(raw) - end <= MAX_TRAILER and not raw[end:].strip(b"\0")


def test_the_unmutated_archive_is_accepted() -> None:
    """The fuzzed bundles start from one that install accepts: each refusal is the mutation's."""
    accepted = _install_passes(BASE_GZ)
    assert not isinstance(accepted, str), accepted
    assert accepted[0].fields.members == (WHEEL_NAME,)
    _assert_safe(*accepted)


# -- the manifest's fields ----------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEY_PATHS: list[tuple[str | int, ...]] = [
    ("format",),
    ("format_version",),
    ("project",),
    ("project", "name"),
    ("project", "version"),
    ("target",),
    ("target", "python"),
    ("target", "implementation"),
    ("target", "platforms"),
    ("target", "platforms", 0),
    ("target", "abi3"),
    ("groups",),
    ("groups", 0),
    ("members",),
    ("members", 0),
    ("hooks",),
    ("hooks", "post-deploy"),
    ("hooks", "post-deploy", 0),
    ("hooks", "timeout"),
    ("built_from",),
    ("built_from", "lock_sha256"),
    ("built_from", "git_commit"),
    ("files",),
    ("files", 0),
    ("files", 0, "path"),
    ("files", 0, "size"),
    ("files", 0, "sha256"),
    ("a later field",),
]
DELETE = object()


def _edit(manifest: Any, path: tuple[str | int, ...], value: Any) -> Any:
    if not path:
        return {} if value is DELETE else value
    parent = manifest
    for key in path[:-1]:
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            return manifest  # an earlier edit changed the shape: nothing to edit here
    try:
        if value is DELETE:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass
    return manifest


# Values a field could plausibly hold, so that some edits are accepted and the oracle has work.
PLAUSIBLE = st.sampled_from(
    [
        "3.11",
        "3",
        "cp",
        "pp",
        "any",
        "manylinux_2_17_x86_64",
        "linux x86_64",
        WHEEL_NAME,
        SDIST,
        f"../{WHEEL_NAME}",
        "web",
        "echo hi",
        "a\nb",
        "\x00",
        "0" * 64,
        "0" * 40,
        1,
        900,
        0.5,
        0,
        -1,
        True,
        None,
        [],
        {},
        [WHEEL_NAME],
        ["any"],
        {"name": "x", "version": "1"},
    ]
)


@st.composite
def manifest_edits(draw: st.DrawFn) -> bytes:
    manifest: Any = _manifest()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(KEY_PATHS))
        value = draw(st.just(DELETE) | PLAUSIBLE | json_values)
        manifest = _edit(manifest, path, value)
    return json.dumps(manifest, indent=draw(st.sampled_from([None, 2]))).encode()


def _nested(depth: int) -> bytes:
    text = json.dumps(_manifest())
    return text.replace('"groups": ["web"]', '"groups": ' + "[" * depth + "]" * depth).encode()


def _spliced(token: str) -> bytes:
    return json.dumps(_manifest()).replace('"timeout": 900', f'"timeout": {token}').encode()


RAW_MANIFESTS = st.one_of(
    st.sampled_from([1, 31, 32, 33, 999, 1000, 5000, 100_000]).map(_nested),
    st.integers(1, 6000).map(lambda n: _spliced("9" * n)),
    st.integers(1, 6000).map(lambda n: _spliced("-" + "1" * n)),
    st.sampled_from(
        ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e-999", "0.0", "9" * 400 + ".5"]
    ).map(_spliced),
    st.sampled_from(['"\\ud800"', '"\\u0000"', '"a\\nb"', "[]", "{}", "true", "null"]).map(_spliced),
    st.just(json.dumps(_manifest()).replace("{", '{"format": 0, ', 1).encode()),  # a key twice
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
)


@settings(FUZZ, max_examples=1200)
@given(raw=st.one_of(manifest_edits(), manifest_edits(), manifest_edits(), RAW_MANIFESTS))
def test_any_manifest_is_refused_in_one_line_or_read_with_every_field_typed(raw: bytes) -> None:
    _check(bundles.bundle_bytes(FILES, raw))


# -- pylock.toml --------------------------------------------------------------------------------


def _toml(value: Any) -> str:
    """A TOML value, inline (tables as inline tables, keys quoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if not isinstance(value, float) or math.isfinite(value) else "nan"
    if isinstance(value, str):
        return bundles.toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{bundles.toml_string(k)} = {_toml(v)}" for k, v in value.items()) + " }"


toml_values = st.recursive(
    st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
PATHS = st.sampled_from(
    [
        WHEEL,
        SDIST,
        LONG,
        "../x.whl",
        f"../{WHEEL}",
        "/etc/passwd",
        f"/{WHEEL}",
        f"./{WHEEL}",
        f"wheels//{WHEEL_NAME}",
        f"wheels/../{WHEEL}",
        PYLOCK,
        MANIFEST,
        "uv/uv",
        "wheels/",
        "wheels",
        "",
        f"{WHEEL}\0",
        "file:///etc/passwd",
    ]
) | st.text(max_size=20)
SHAS = st.sampled_from([_sha(data) for data in CONTENT.values()]) | st.text(max_size=70)


def _true_artifact(rel: str) -> dict[str, Any]:
    data = CONTENT[rel]
    return {"name": rel.rpartition("/")[2], "path": rel, "size": len(data), "hashes": {"sha256": _sha(data)}}


@st.composite
def artifacts(draw: st.DrawFn) -> dict[str, Any]:
    """One of the bundle's own files, truly described, then changed in up to three ways."""
    table = _true_artifact(draw(st.sampled_from(sorted(CONTENT))))
    for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 2, 3]))):
        key = draw(st.sampled_from(["name", "path", "url", "size", "hashes", "upload-time", "x"]))
        if key == "path":
            table["path"] = draw(PATHS)
        elif key == "url":
            urls = st.sampled_from(["https://example.invalid/x.whl", "file:///etc/passwd", ""])
            table["url"] = draw(urls | st.text(max_size=20))
        elif key == "hashes":
            table["hashes"] = draw(st.builds(lambda sha: {"sha256": sha}, SHAS) | toml_values)
        elif draw(st.booleans()) and key in table:
            del table[key]
        else:
            table[key] = draw(toml_values)
    return table


def _mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` three times in four (sampled_from: hypothesis draws small integers far more often)."""
    return st.sampled_from([usual, usual, usual, other]).flatmap(lambda chosen: chosen)


def _one_in(draw: st.DrawFn, n: int) -> bool:
    """True about once in ``n`` draws (the last choice: hypothesis favours the first, the simplest)."""
    return draw(st.sampled_from(range(n))) == n - 1


@st.composite
def packages(draw: st.DrawFn) -> dict[str, Any]:
    package: dict[str, Any] = {"name": draw(st.sampled_from(["tiny", "evil"]) | st.text(max_size=10))}
    if draw(st.booleans()):
        package["version"] = draw(st.text(max_size=8))
    if not _one_in(draw, 6):
        package["wheels"] = draw(_mostly(st.lists(artifacts(), min_size=1, max_size=3), toml_values))
    for key in ("sdist", "archive"):
        if _one_in(draw, 4):
            package[key] = draw(_mostly(artifacts(), toml_values))
    for key in ("vcs", "directory"):
        if _one_in(draw, 20):
            package[key] = draw(
                st.dictionaries(st.sampled_from(["type", "url", "path", "commit-id"]), toml_values)
            )
    return package


@st.composite
def locks(draw: st.DrawFn) -> bytes:
    lines = ['lock-version = "1.0"', 'created-by = "fuzz"']
    found = draw(_mostly(st.lists(packages(), max_size=3), toml_values))
    lines.append(f"packages = {_toml(found)}")
    return ("\n".join(lines) + "\n").encode()


RAW_LOCKS = st.one_of(
    st.sampled_from([10, 100, 400, 1000, 5000]).map(lambda n: b"packages = " + b"[" * n + b"]" * n),
    st.sampled_from([10, 100, 400, 1000, 5000]).map(lambda n: b"x = " + b"{a = " * n + b"1" + b"}" * n),
    st.integers(1, 6000).map(lambda n: b"packages = [{ size = " + b"7" * n + b" }]"),
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
)


@settings(FUZZ, max_examples=1200)
@given(lock=st.one_of(locks(), locks(), locks(), RAW_LOCKS))
def test_any_lock_is_refused_in_one_line_or_names_only_the_bundles_own_wheels(lock: bytes) -> None:
    files = {**CONTENT, PYLOCK: lock}
    _check(bundles.bundle_bytes(files, _manifest(files)))
