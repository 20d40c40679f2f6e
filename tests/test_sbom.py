"""SBOMs (issue 16): a CycloneDX 1.6 document for every generation and every bundle, valid against the
schema, byte-identical for the same content, naming each locked file by its purl and sha256 and each
member by the hash of its sources and its commit; ``venvkeeper sbom`` prints it.

What a test expects is read from the lock (tomllib), git and the generation's record, not from the code
under test; the schema is CycloneDX's own, through cyclonedx-python-lib's strict validator.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import subprocess
import tarfile
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from venvkeeper.sbom import facts
from vk import commit_all, vk

NIL = "urn:uuid:00000000-0000-0000-0000-000000000000"
TOP = "venvkeeper-bundle"


def _valid(document: bytes) -> dict[str, Any]:
    """The document, once CycloneDX 1.6's JSON schema accepts it (strict: no unknown field)."""
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(document.decode())
    assert error is None, getattr(getattr(error, "data", None), "message", error)
    parsed: dict[str, Any] = json.loads(document)
    assert (parsed["bomFormat"], parsed["specVersion"]) == ("CycloneDX", "1.6")
    return parsed


def _home(env: Path) -> Path:
    return env.parent / f"{env.name}.venvkeeper"


def _git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()


def _lock_packages(project: Path) -> dict[str, dict[str, Any]]:
    lock = tomllib.loads((project / "uv.lock").read_text())
    return {p["name"]: p for p in lock["package"]}


def _components(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in document["components"]}


def _properties(component: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in component.get("properties", [])}


def _sha256(component: dict[str, Any]) -> str:
    [digest] = component["hashes"]
    assert digest["alg"] == "SHA-256"
    return str(digest["content"])


def _deploy(make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    project = make_project("workspace")
    env = tmp_path / "srv" / ".venv"
    result = vk(capsys, "deploy", project, "--env", env)
    assert result.code == 0, result.err
    return env


def test_a_deploy_writes_a_valid_sbom_of_the_lock_beside_the_record(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _deploy(make_project, tmp_path, capsys)
    project = tmp_path / "workspace"
    generations = _home(env) / "generations"
    raw = (generations / "0001.sbom.cdx.json").read_bytes()
    record = json.loads((generations / "0001.json").read_text())

    assert record["sbom_sha256"] == hashlib.sha256(raw).hexdigest()
    assert not list(env.resolve().rglob("*.cdx.json"))  # beside the record, never inside the venv
    document = _valid(raw)
    components = _components(document)
    assert sorted(components) == ["core", "tinydb", "tinyutil", "tinyweb", "webapp"]
    locked = _lock_packages(project)
    for name in ("tinydb", "tinyutil", "tinyweb"):
        purl = PackageURL.from_string(components[name]["purl"])
        [wheel] = locked[name]["wheels"]
        assert (purl.type, purl.name, purl.version) == ("pypi", name, locked[name]["version"])
        assert purl.qualifiers == {}  # what scanners match: the index is a property instead
        assert _properties(components[name])["venvkeeper:index"] == locked[name]["source"]["registry"]
        assert _sha256(components[name]) == wheel["hash"].removeprefix("sha256:")
        assert _properties(components[name])["venvkeeper:hash-of"] == "wheel"
    head = _git(project, "rev-parse", "HEAD")
    sealed = {m["name"]: m["sha256"] for m in record["members"]}
    for name in ("core", "webapp"):
        member = components[name]
        assert _sha256(member) == sealed[name]
        assert _properties(member)["venvkeeper:hash-of"] == "member-source"
        assert member["pedigree"]["commits"] == [{"uid": head}]
        assert PackageURL.from_string(member["purl"]).type == "generic"  # not a PyPI project
    graph = {d["ref"]: set(d.get("dependsOn", [])) for d in document["dependencies"]}
    assert graph[components["tinyweb"]["bom-ref"]] == {components["tinyutil"]["bom-ref"]}
    # The time stamp is the lock's commit, the serial number the content's: nothing says "now".
    committed = datetime.datetime.fromisoformat(_git(project, "log", "-1", "--format=%cI", "--", "uv.lock"))
    assert datetime.datetime.fromisoformat(document["metadata"]["timestamp"]) == committed
    serial = document["serialNumber"]
    nil = raw.replace(serial.encode(), NIL.encode())
    assert serial == f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'sha256:' + hashlib.sha256(nil).hexdigest())}"


def test_the_same_generation_gives_the_same_bytes_and_sbom_prints_them(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _deploy(make_project, tmp_path, capsys)
    project = tmp_path / "workspace"
    other = tmp_path / "other" / ".venv"
    assert vk(capsys, "deploy", project, "--env", other).code == 0
    in_place = tmp_path / "image" / "venv"
    assert vk(capsys, "deploy", project, "--env", in_place, "--in-place").code == 0
    raw = (_home(env) / "generations" / "0001.sbom.cdx.json").read_bytes()

    printed = vk(capsys, "sbom", "--env", env)
    again = vk(capsys, "sbom", "--env", env)

    assert (printed.code, printed.err) == (0, "")
    assert printed.out.encode() == again.out.encode() == raw
    assert (_home(other) / "generations" / "0001.sbom.cdx.json").read_bytes() == raw
    assert (_home(in_place) / "in-place.sbom.cdx.json").read_bytes() == raw
    assert vk(capsys, "sbom", "--env", in_place).out.encode() == raw
    as_json = vk(capsys, "sbom", "--env", env, "--json")
    assert as_json.code == 0
    assert as_json.json["sbom"] == json.loads(raw)
    assert (as_json.json["generation"], as_json.json["sha256"]) == (1, hashlib.sha256(raw).hexdigest())
    written = tmp_path / "out" / "app.cdx.json"
    (tmp_path / "out").mkdir()
    to_file = vk(capsys, "sbom", "--env", env, "-o", written)
    assert to_file.code == 0 and written.read_bytes() == raw
    assert f"SBOM written to {written}" in to_file.out


def test_a_new_generation_has_its_own_sbom_and_old_ones_go_with_their_generation(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _deploy(make_project, tmp_path, capsys)
    project = tmp_path / "workspace"
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text() + "\n# changed\n")
    commit_all(project, "a member change")

    assert vk(capsys, "deploy", project, "--env", env, "--keep", "0").code == 0

    generations = _home(env) / "generations"
    assert sorted(p.name for p in generations.glob("*.sbom.cdx.json")) == ["0002.sbom.cdx.json"]
    document = _valid((generations / "0002.sbom.cdx.json").read_bytes())
    record = json.loads((generations / "0002.json").read_text())
    webapp = _components(document)["webapp"]
    assert _sha256(webapp) == next(m["sha256"] for m in record["members"] if m["name"] == "webapp")
    assert webapp["pedigree"]["commits"] == [{"uid": _git(project, "rev-parse", "HEAD")}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give either --env PATH or a BUNDLE file"),
        (("bundle.tar.gz", "--env", "x"), "give either --env PATH or a BUNDLE file"),
        (("--env", "nowhere", "--public-key", "k.pub"), "--public-key checks a BUNDLE's signature"),
    ],
)
def test_sbom_wants_one_subject(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    result = vk(capsys, "sbom", *args)

    assert result.code == 2
    assert message in result.error_line


def test_sbom_of_a_plain_venv_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = tmp_path / "venv"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(env)], check=True)

    result = vk(capsys, "sbom", "--env", env)
    as_json = vk(capsys, "sbom", "--env", env, "--json")

    assert result.code == 2
    assert str(env) in result.error_line and "deploy or install it with venvkeeper" in result.err
    assert (as_json.code, as_json.json["ok"]) == (2, False)


def test_an_altered_or_missing_sbom_is_refused_not_printed(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _deploy(make_project, tmp_path, capsys)
    path = _home(env) / "generations" / "0001.sbom.cdx.json"
    raw = path.read_bytes()
    path.unlink()
    path.write_bytes(raw.replace(b'"name": "tinyweb"', b'"name": "tinywob"'))

    altered = vk(capsys, "sbom", "--env", env)
    receipt_key = tmp_path / "k"
    assert vk(capsys, "keygen", receipt_key).code == 0
    receipt = vk(capsys, "receipt", "--env", env, "--key", receipt_key)
    path.unlink()
    missing = vk(capsys, "sbom", "--env", env)

    assert (altered.code, altered.out) == (2, "")
    assert f"{path}: does not match the sha256 in its generation record" in altered.error_line
    assert receipt.code == 2 and "does not match the sha256" in receipt.error_line
    assert (missing.code, missing.out) == (2, "")
    assert f"{path}: missing, though the generation's record names its sha256" in missing.error_line
    assert "venvkeeper deploy --repair" in missing.err


def test_a_generation_made_before_sboms_gets_one_built_from_its_manifest_and_lock(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _deploy(make_project, tmp_path, capsys)
    generations = _home(env) / "generations"
    written = (generations / "0001.sbom.cdx.json").read_bytes()
    (generations / "0001.sbom.cdx.json").unlink()
    record = json.loads((generations / "0001.json").read_text())
    del record["sbom_sha256"]
    (generations / "0001.json").unlink()
    (generations / "0001.json").write_text(json.dumps(record))

    result = vk(capsys, "sbom", "--env", env)

    assert result.code == 0, result.err
    assert "note: generation 1 has no SBOM file (it was made before venvkeeper wrote SBOMs" in result.err
    assert result.out.encode() == written  # the same lock at hand: the same document


def test_a_receipt_names_the_generations_sbom(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _deploy(make_project, tmp_path, capsys)
    key = tmp_path / "k"
    assert vk(capsys, "keygen", key).code == 0

    signed = vk(capsys, "receipt", "--env", env, "--key", key, "--json")

    assert signed.code == 0, signed.err
    raw = (_home(env) / "generations" / "0001.sbom.cdx.json").read_bytes()
    assert signed.json["statement"]["predicate"]["sbom_sha256"] == hashlib.sha256(raw).hexdigest()


# -- bundles ------------------------------------------------------------------------------------


def _pack(capsys: pytest.CaptureFixture[str], project: Path, out: Path, *args: str | Path) -> None:
    result = vk(capsys, "pack", project, "-o", out, *args)
    assert result.code == 0, result.err


def _entries(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle, "r:gz") as tar:
        return {
            m.name.removeprefix(f"{TOP}/"): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def _repack(bundle: Path, out: Path, change: Callable[[dict[str, bytes]], None]) -> None:
    """The bundle's entries, changed, written again in the same order by Python's tarfile."""
    with tarfile.open(bundle, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]  # type: ignore[union-attr]
    files = {m.name.removeprefix(f"{TOP}/"): data for m, data in members if m.isfile()}
    change(files)
    with tarfile.open(out, "w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for member, _ in members:
            if member.isfile() and member.name.removeprefix(f"{TOP}/") not in files:
                continue  # the change removed it
            data = files.get(member.name.removeprefix(f"{TOP}/"), b"")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)


def test_a_bundle_carries_its_sbom_in_its_manifest_and_install_keeps_it(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("single")
    bundle = tmp_path / "app.tar.gz"
    _pack(capsys, project, bundle)
    _pack(capsys, project, tmp_path / "again.tar.gz")
    entries = _entries(bundle)
    raw = entries["sbom.cdx.json"]

    printed = vk(capsys, "sbom", bundle)

    assert printed.code == 0, printed.err
    assert printed.out.encode() == raw == _entries(tmp_path / "again.tar.gz")["sbom.cdx.json"]
    listed = {f["path"]: f["sha256"] for f in json.loads(entries["manifest.json"])["files"]}
    assert listed["sbom.cdx.json"] == hashlib.sha256(raw).hexdigest()
    components = _components(_valid(raw))
    [wheel] = _lock_packages(project)["tinyutil"]["wheels"]
    assert _sha256(components["tinyutil"]) == wheel["hash"].removeprefix("sha256:")
    assert components["tinyutil"]["purl"].startswith("pkg:pypi/tinyutil@1.1.0")
    [member] = [name for name in entries if name.startswith("wheels/single-")]
    assert _sha256(components["single"]) == hashlib.sha256(entries[member]).hexdigest()
    assert components["single"]["pedigree"]["commits"] == [{"uid": _git(project, "rev-parse", "HEAD")}]

    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "install", bundle, "--env", env).code == 0
    kept = (_home(env) / "generations" / "0001.sbom.cdx.json").read_bytes()
    record = json.loads((_home(env) / "generations" / "0001.json").read_text())
    assert kept == raw and record["sbom_sha256"] == hashlib.sha256(raw).hexdigest()
    assert vk(capsys, "sbom", "--env", env).out.encode() == raw


def test_a_bundle_whose_sbom_was_changed_is_refused(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("single")
    assert vk(capsys, "keygen", tmp_path / "release").code == 0
    signed = tmp_path / "signed.tar.gz"
    _pack(capsys, project, signed, "--sign", tmp_path / "release")

    def drop_a_component(files: dict[str, bytes]) -> None:
        files["sbom.cdx.json"] = files["sbom.cdx.json"].replace(b'"name": "tinyutil"', b'"name": "other"')

    def and_describe_it(files: dict[str, bytes]) -> None:
        drop_a_component(files)
        manifest = json.loads(files["manifest.json"])
        for entry in manifest["files"]:
            if entry["path"] == "sbom.cdx.json":
                entry["sha256"] = hashlib.sha256(files["sbom.cdx.json"]).hexdigest()
        files["manifest.json"] = (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()

    changed, described = tmp_path / "changed.tar.gz", tmp_path / "described.tar.gz"
    _repack(signed, changed, drop_a_component)
    _repack(signed, described, and_describe_it)
    key = tmp_path / "release.pub"

    results = {
        "changed": vk(capsys, "sbom", changed, "--public-key", key),
        "described": vk(capsys, "sbom", described, "--public-key", key),
        "install": vk(capsys, "install", described, "--env", tmp_path / "srv" / ".venv", "--public-key", key),
    }

    assert {k: (r.code, r.out) for k, r in results.items()} == dict.fromkeys(results, (2, ""))
    assert "sbom.cdx.json" in results["changed"].error_line
    assert "signature does not verify" in results["described"].error_line
    assert "signature does not verify" in results["install"].error_line
    assert not (tmp_path / "srv").exists()
    good = vk(capsys, "sbom", signed, "--public-key", key)
    assert good.code == 0, good.err


def _describe(files: dict[str, bytes]) -> None:
    """manifest.json describing ``files`` as they now are (an unsigned bundle stays consistent)."""
    manifest = json.loads(files["manifest.json"])
    manifest["files"] = [
        {"path": path, "size": len(files[path]), "sha256": hashlib.sha256(files[path]).hexdigest()}
        for path in sorted(files)
        if path != "manifest.json"
    ]
    files["manifest.json"] = (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()


def test_a_bundle_sbom_that_is_not_cyclonedx_is_refused_and_one_without_installs(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("single")
    bundle = tmp_path / "app.tar.gz"
    _pack(capsys, project, bundle)

    def not_cyclonedx(files: dict[str, bytes]) -> None:
        files["sbom.cdx.json"] = b'{"spdxVersion": "SPDX-2.3"}\n'
        _describe(files)

    def without(files: dict[str, bytes]) -> None:
        del files["sbom.cdx.json"]
        _describe(files)

    other, old = tmp_path / "other.tar.gz", tmp_path / "old.tar.gz"
    _repack(bundle, other, not_cyclonedx)
    _repack(bundle, old, without)
    env = tmp_path / "srv" / ".venv"

    printed = vk(capsys, "sbom", other)
    refused = vk(capsys, "install", other, "--env", env)
    no_sbom = vk(capsys, "sbom", old)
    installed = vk(capsys, "install", old, "--env", env)

    for result in (printed, refused):
        assert (result.code, result.out) == (2, "")
        assert "sbom.cdx.json: is not a CycloneDX JSON document" in result.error_line
    assert no_sbom.code == 2
    assert "has no venvkeeper-bundle/sbom.cdx.json: it was packed before venvkeeper wrote SBOMs" in (
        no_sbom.error_line
    )
    assert installed.code == 0, installed.err
    record = json.loads((_home(env) / "generations" / "0001.json").read_text())
    assert record["sbom_sha256"] is None
    assert not (_home(env) / "generations" / "0001.sbom.cdx.json").exists()
    built = vk(capsys, "sbom", "--env", env)
    assert built.code == 0, built.err
    assert "note: generation 1 has no SBOM file" in built.err
    assert sorted(_components(_valid(built.out.encode()))) == ["single", "tinyutil"]


# -- the facts, from plain data -------------------------------------------------------------------

_LOCK = {
    "package": [
        {
            "name": "Fast_Lib",
            "version": "2.0",
            "source": {"registry": "https://pypi.org/simple"},
            "sdist": {"url": "https://files/fast_lib-2.0.tar.gz", "hash": "sha256:" + "0" * 64},
            "wheels": [
                {
                    "url": "https://files/fast_lib-2.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                    "hash": "sha256:" + "1" * 64,
                },
                {
                    "url": "https://files/fast_lib-2.0-cp311-cp311-musllinux_1_2_x86_64.whl",
                    "hash": "sha256:" + "2" * 64,
                },
                {
                    "url": "https://files/fast_lib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl",
                    "hash": "sha256:" + "3" * 64,
                },
            ],
        },
        {
            "name": "fromgit",
            "version": "0.1",
            "source": {"git": "https://example.org/r.git?rev=main#" + "a" * 40},
        },
        {"name": "local", "version": "1.0", "source": {"directory": "../local"}},
        {
            "name": "mirrored",
            "version": "3",
            "source": {"registry": "https://ci:s3cret@mirror.example/simple/"},
        },
        {
            "name": "byurl",
            "version": "4",
            "source": {"url": "https://ci:s3cret@files.example/byurl-4.tar.gz"},
        },
        {
            "name": "presigned",
            "version": "5",
            "source": {"url": "https://bucket.example/presigned-5-py3-none-any.whl?X-Amz-Signature=s3cret#x"},
            "wheels": [
                {
                    "url": "https://bucket.example/presigned-5-py3-none-any.whl?token=s3cret",
                    "hash": "sha256:" + "4" * 64,
                }
            ],
        },
    ]
}


@pytest.mark.parametrize(
    ("tags", "chosen"),
    [
        (["cp311-cp311-manylinux_2_17_x86_64"], "1" * 64),
        (["cp311-cp311-musllinux_1_2_x86_64"], "2" * 64),
        (["cp312-cp312-manylinux_2_17_x86_64"], "3" * 64),
        (["cp313-cp313-linux_x86_64"], "0" * 64),  # built from the sdist: the sdist's hash
    ],
)
def test_the_hash_is_the_locked_file_that_was_installed(tags: list[str], chosen: str) -> None:
    entries = facts.lock_entries(_LOCK)
    component = facts.component_for("fast-lib", "2.0", entries["fast-lib", "2.0"], tags)

    assert component.sha256 == chosen
    assert component.hash_of == ("sdist" if chosen == "0" * 64 else "wheel")
    assert (component.purl, component.index) == ("pkg:pypi/fast-lib@2.0", "https://pypi.org/simple")


def test_purls_name_where_a_package_came_from() -> None:
    entries = facts.lock_entries(_LOCK)
    git = facts.component_for("fromgit", "0.1", entries["fromgit", "0.1"], [])
    local = facts.component_for("local", "1.0", entries["local", "1.0"], [])
    unlocked = facts.component_for("stray", "9", None, [])

    assert PackageURL.from_string(git.purl or "").qualifiers == {
        "vcs_url": "git+https://example.org/r.git@" + "a" * 40
    }
    assert (local.purl, local.hash_of) == ("pkg:generic/local@1.0", "none")
    assert (unlocked.purl, unlocked.sha256, unlocked.hash_of) == ("pkg:pypi/stray@9", None, "none")
    # An index's or a URL's credentials never reach the SBOM.
    mirrored = facts.component_for("mirrored", "3", entries["mirrored", "3"], [])
    byurl = facts.component_for("byurl", "4", entries["byurl", "4"], [])
    assert (mirrored.purl, mirrored.index) == ("pkg:pypi/mirrored@3", "https://mirror.example/simple")
    assert PackageURL.from_string(byurl.purl or "").qualifiers == {
        "download_url": "https://files.example/byurl-4.tar.gz"
    }
    # Nor does a presigned link's query (its signature or token), in the address or the file's name.
    presigned = facts.component_for("presigned", "5", entries["presigned", "5"], ["py3-none-any"])
    assert "s3cret" not in repr(presigned) and presigned.sha256 == "4" * 64
    assert PackageURL.from_string(presigned.purl or "").qualifiers == {
        "download_url": "https://bucket.example/presigned-5-py3-none-any.whl"
    }
