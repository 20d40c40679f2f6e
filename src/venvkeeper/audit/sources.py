"""Where the advisories come from (``--osv SOURCE``): an OSV API at a URL, or, offline, an OSV export:
the zip of JSON records OSV publishes per ecosystem (``PyPI/all.zip``), or a directory of such records.

Only the records that name one of the audited packages are parsed: the PyPI export holds tens of
thousands. A record that is not OSV is an error naming the file: a damaged export says nothing.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venvkeeper.audit.osv import ECOSYSTEM, Advisory, OsvFormatError, parse_record
from venvkeeper.core.errors import ConfigError
from venvkeeper.core.names import canonicalize_name
from venvkeeper.gateways import osv as osvapi
from venvkeeper.gateways.osv import NoAdvisoryDataError

__all__ = ["Source", "advisories_for", "parse_source"]


@dataclass(frozen=True)
class Source:
    kind: str  # "api", "export" (a zip) or "directory"
    where: str

    def describe(self) -> str:
        return {"api": "the OSV API at", "export": "the OSV export", "directory": "the OSV records in"}[
            self.kind
        ] + f" {self.where}"


def parse_source(text: str, origin: str = "--osv") -> Source:
    """A URL (http or https) or the path of an export; refused with one line otherwise."""
    if text.startswith(("http://", "https://")):
        return Source("api", text)
    path = os.path.abspath(text)
    if os.path.isdir(path):
        return Source("directory", path)
    if os.path.isfile(path):
        return Source("export", path)
    raise ConfigError(
        f"{origin} {text}: neither an http(s) URL nor an existing file or directory",
        hint="give the OSV API's base URL (https://api.osv.dev) or the path of an OSV export zip",
    )


def _named(raw: Any, names: set[str]) -> bool:
    """Whether a decoded record names one of ``names`` in PyPI, before the full parse."""
    for entry in raw.get("affected") or [] if isinstance(raw, dict) else []:
        package = entry.get("package") if isinstance(entry, dict) else None
        if (
            isinstance(package, dict)
            and package.get("ecosystem") == ECOSYSTEM
            and isinstance(package.get("name"), str)
            and canonicalize_name(package["name"]) in names
        ):
            return True
    return False


def _records(source: Source) -> Iterator[tuple[str, bytes]]:
    """(label, bytes) of every JSON record of an export or directory."""
    if source.kind == "directory":
        for path in sorted(Path(source.where).rglob("*.json")):
            yield str(path), path.read_bytes()
        return
    try:
        with zipfile.ZipFile(source.where) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".json") and not info.is_dir():
                    yield f"{source.where}:{info.filename}", archive.read(info)
    except (zipfile.BadZipFile, OSError) as exc:
        raise NoAdvisoryDataError(
            f"{source.where}: not a readable OSV export zip: {exc}",
            hint="download the ecosystem's export again (https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip)",
        ) from None


def _from_records(source: Source, names: set[str]) -> list[Advisory]:
    found: list[Advisory] = []
    count = 0
    for label, data in _records(source):
        count += 1
        try:
            raw = json.loads(data)
            advisory = parse_record(raw, label) if _named(raw, names) else None
        except (ValueError, OsvFormatError) as exc:
            raise NoAdvisoryDataError(
                f"{label}: not an OSV record: {exc}", hint="the export is damaged: download it again"
            ) from None
        if advisory is not None:
            found.append(advisory)
    if count == 0:
        raise NoAdvisoryDataError(
            f"{source.where}: holds no OSV records (*.json)",
            hint="give the ecosystem's export zip as published by OSV, or a directory of its records",
        )
    return found


def _from_api(source: Source, packages: Mapping[str, str]) -> list[Advisory]:
    asked = sorted(packages.items())
    ids = sorted({i for found in osvapi.query_batch(source.where, asked, ECOSYSTEM) for i in found})
    found: list[Advisory] = []
    for vuln_id in ids:
        raw = osvapi.fetch_vuln(source.where, vuln_id)
        try:
            advisory = parse_record(raw, f"{source.where}/v1/vulns/{vuln_id}")
        except OsvFormatError as exc:
            raise NoAdvisoryDataError(str(exc), hint="check that --osv names an OSV API") from None
        if advisory is not None:
            found.append(advisory)
    return found


def advisories_for(source: Source, packages: Mapping[str, str]) -> list[Advisory]:
    """The advisories that name any of ``packages`` (name -> version); matching is the caller's."""
    if not packages:
        return []
    if source.kind == "api":
        return _from_api(source, packages)
    return _from_records(source, {canonicalize_name(n) for n in packages})
