"""The fake third-party distributions of the local index: the one place that lists them.

A :class:`FakeDistribution` is the shape of a distribution (its requirements, its scripts);
the version is chosen when a wheel is built, so a test can publish ``tinyweb`` 1.2.1 that
looks like 1.0.0 but for its version::

    index.publish(fake_wheel(tmp_path, "tinyweb", "1.2.1"))
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .wheels import make_wheel, repack_with_requirements

__all__ = [
    "BUILD_BACKENDS",
    "CATALOG",
    "SESSION_RELEASES",
    "FakeDistribution",
    "fake_wheel",
    "session_wheels",
]


@dataclass(frozen=True)
class FakeDistribution:
    """A pure-Python distribution whose module prints ``<name> <version>`` from ``main()``."""

    name: str
    requires: tuple[str, ...] = ()
    console_scripts: tuple[tuple[str, str], ...] = ()
    requires_python: str | None = None

    @property
    def import_name(self) -> str:
        return self.name.replace("-", "_").lower()

    def module_source(self, version: str) -> str:
        return (
            f'"""{self.name}, a fake distribution for the venvkeeper tests."""\n\n'
            f'__version__ = "{version}"\n\n\n'
            "def main() -> int:\n"
            f'    print(f"{self.name} {{__version__}}")\n'
            "    return 0\n"
        )

    def build(self, dest_dir: Path, version: str) -> Path:
        return make_wheel(
            dest_dir,
            self.name,
            version,
            files={f"{self.import_name}/__init__.py": self.module_source(version)},
            requires=self.requires,
            console_scripts=dict(self.console_scripts),
            requires_python=self.requires_python,
        )


CATALOG: dict[str, FakeDistribution] = {
    dist.name: dist
    for dist in (
        FakeDistribution("tinyutil"),
        FakeDistribution(
            "tinyweb", requires=("tinyutil>=1.0",), console_scripts=(("tinyweb", "tinyweb:main"),)
        ),
        FakeDistribution("tinydb"),
        # Only ever in a dev or optional group.
        FakeDistribution("tinyextra"),
        # Only ever in a docs or tests group (a project whose default-groups go beyond dev).
        FakeDistribution("tinydocs"),
        FakeDistribution("tinytests"),
    )
}

# Published when the session starts.
SESSION_RELEASES: tuple[tuple[str, str], ...] = (
    ("tinyutil", "1.0.0"),
    ("tinyutil", "1.1.0"),
    ("tinyweb", "1.0.0"),
    ("tinydb", "1.2.0"),
    ("tinyextra", "1.0.0"),
    ("tinydocs", "1.0.0"),
    ("tinytests", "1.0.0"),
)

# Repacked from the running interpreter, with their runtime requirements, so that uv can
# build the fixture projects' members from the local index. hatchling asks for `editables`
# from get_requires_for_build_editable, and uv builds workspace members as editables.
BUILD_BACKENDS: tuple[str, ...] = ("setuptools", "hatchling", "editables", "flit-core", "uv-build")


def fake_wheel(
    dest_dir: Path,
    name: str,
    version: str,
    *,
    requires: tuple[str, ...] | None = None,
    requires_python: str | None = None,
) -> Path:
    """Build ``name`` (a :data:`CATALOG` key) at ``version``, optionally with other metadata."""
    try:
        dist = CATALOG[name]
    except KeyError:
        raise KeyError(f"{name} is not in tests/support/packages.py CATALOG: {sorted(CATALOG)}") from None
    if requires is not None:
        dist = replace(dist, requires=requires)
    if requires_python is not None:
        dist = replace(dist, requires_python=requires_python)
    return dist.build(dest_dir, version)


def session_wheels(dest_dir: Path) -> list[Path]:
    """Every wheel the session index starts with: the fake releases and the build backends."""
    fakes = [fake_wheel(dest_dir, name, version) for name, version in SESSION_RELEASES]
    return fakes + repack_with_requirements(BUILD_BACKENDS, dest_dir)
