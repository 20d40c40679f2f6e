"""``venvkeeper doctor``: say what is wrong with an environment, and what heal would do about it.

Read-only: :mod:`envfacts` reads, :mod:`diagnosis` decides. Timed (150 ms on a 1,000-file
environment, start-up included), so this path imports neither click, pathlib nor dataclasses.
"""

from __future__ import annotations

import time

from venvkeeper.doctor.diagnosis import diagnose
from venvkeeper.doctor.envfacts import gather
from venvkeeper.doctor.result import DoctorResult

__all__ = ["doctor"]


def doctor(env: str) -> DoctorResult:
    started = time.monotonic()
    facts = gather(env)
    findings = diagnose(facts)
    return DoctorResult(
        env=env,
        directory=facts.root,
        kind=facts.kind,
        interpreter=None
        if not facts.links
        else {
            "path": f"{facts.root}/bin/python",
            "version": None if facts.interpreter is None else facts.interpreter.version,
            "runs": facts.interpreter is not None,
        },
        packages_python=facts.packages_python,
        managed_by=facts.managed_by,
        findings=findings,
        duration_s=time.monotonic() - started,
    )
