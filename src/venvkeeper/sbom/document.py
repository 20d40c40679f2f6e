"""An SBOM's facts as a CycloneDX 1.6 JSON document, written with cyclonedx-python-lib, byte for byte the
same for the same facts.

What would differ between two runs is fixed: every ``bom-ref`` is named (the library draws random ones
otherwise), the time stamp is the lock's commit time or absent (never "now"), components are sorted (the
library keeps them in sorted sets), the only tool named is venvkeeper at its own version, and the serial
number is derived from the content: ``uuid5(NAMESPACE_URL, "sha256:" + sha256 of the document written
with the nil serial number urn:uuid:00000000-0000-0000-0000-000000000000)``.

This module imports cyclonedx-python-lib (a few hundred milliseconds): its callers load it lazily.
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
import warnings

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.component import Commit, Component, ComponentType, Pedigree
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from venvkeeper import __version__
from venvkeeper.sbom import facts as sbomfacts

__all__ = ["NIL_SERIAL", "SPEC_VERSION", "render", "serial_for"]

SPEC_VERSION = "1.6"
NIL_SERIAL = uuid.UUID(int=0)
_PREFIX = "venvkeeper:"


def _component(c: sbomfacts.Component, project: bool = False) -> Component:
    properties = (
        []
        if project
        else [
            Property(name=f"{_PREFIX}hash-of", value=c.hash_of),
            Property(name=f"{_PREFIX}source", value=c.kind),
        ]
    )
    if c.artifact:
        properties.append(Property(name=f"{_PREFIX}artifact", value=c.artifact))
    if c.index:
        properties.append(Property(name=f"{_PREFIX}index", value=c.index))
    return Component(
        name=c.name,
        version=c.version or None,
        type=ComponentType.APPLICATION if project else ComponentType.LIBRARY,
        bom_ref=c.ref,
        purl=PackageURL.from_string(c.purl) if c.purl else None,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=c.sha256)] if c.sha256 else None,
        pedigree=Pedigree(commits=[Commit(uid=c.commit)]) if c.commit else None,
        properties=properties,
    )


def _bom(facts: sbomfacts.SbomFacts, serial: uuid.UUID) -> Bom:
    top = sbomfacts.Component(
        facts.project, facts.project_version or "", "project", None, None, "none", commit=facts.commit
    )
    root = _component(top, project=True)
    root.bom_ref.value = f"project:{facts.project}"
    tool = Component(
        name="venvkeeper", version=__version__, type=ComponentType.APPLICATION, bom_ref="tool:venvkeeper"
    )
    metadata = BomMetaData(
        component=root,
        tools=ToolRepository(components=[tool]),
        properties=[Property(name=f"{_PREFIX}subject", value=facts.subject)]
        + [Property(name=f"{_PREFIX}{k}", value=v) for k, v in facts.properties],
    )
    # BomMetaData puts "now" in place of a missing time: the lock's commit time, or none at all.
    metadata.timestamp = (
        datetime.datetime.fromisoformat(facts.timestamp) if facts.timestamp else None  # type: ignore[assignment]
    )
    bom = Bom(components=[_component(c) for c in facts.components], serial_number=serial, metadata=metadata)
    # The graph, from the lock: each component's dependencies among those installed.
    refs = {c.name: c.ref for c in facts.components}
    for c in facts.components:
        below = [Dependency(ref=BomRef(refs[d])) for d in c.depends if d in refs]
        bom.dependencies.add(Dependency(ref=BomRef(c.ref), dependencies=below))
    bom.dependencies.add(Dependency(ref=BomRef(root.bom_ref.value), dependencies=_direct(facts)))
    return bom


def _direct(facts: sbomfacts.SbomFacts) -> list[Dependency]:
    """What the project depends on: its members; a project of dependencies only (a virtual root), the
    components nothing else here depends on."""
    members = [c.ref for c in facts.components if c.kind == "member"]
    if not members:
        below = {d for c in facts.components for d in c.depends}
        members = [c.ref for c in facts.components if c.name not in below]
    return [Dependency(ref=BomRef(ref)) for ref in members]


def _write(bom: Bom) -> bytes:
    with warnings.catch_warnings():
        # The library warns (on stderr, mid-deploy) when the project depends on nothing: an
        # environment of no package at all. The document is still valid; the graph is just empty.
        warnings.filterwarnings(
            "ignore", message="The Component this BOM is describing", category=UserWarning
        )
        return (JsonV1Dot6(bom).output_as_string(indent=2) + "\n").encode()


def serial_for(document: bytes) -> uuid.UUID:
    """The serial number of a document written with :data:`NIL_SERIAL`: derived from its content."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "sha256:" + hashlib.sha256(document).hexdigest())


def render(facts: sbomfacts.SbomFacts) -> bytes:
    """The CycloneDX 1.6 JSON document of ``facts``: the same facts always give the same bytes."""
    bom = _bom(facts, NIL_SERIAL)
    bom.serial_number = serial_for(_write(bom))
    return _write(bom)
