"""Heal-at-boot benchmark (issue 17): ``venvkeeper heal --if-needed`` when nothing is wrong.

    python bench/heal_boot_bench.py [--rounds N] [--envs N]

Plain venvs (``uv venv`` on venvkeeper's own interpreter, in a temporary directory) are timed as whole
commands, wall clock from process start to exit, interleaved round by round with the floor of any
Python command line:

- ``$PY -c pass``: the interpreter's own start-up (the anchor);
- ``venvkeeper heal --if-needed --env $E``: one healthy environment. Target: under 60 ms;
- ``venvkeeper heal --if-needed --envs-from $LIST``: ``--envs`` healthy environments in one call
  (informational: the per-environment cost of a boot over many);
- the one-environment command again with ``PYTHONPATH`` set (informational: venvkeeper then starts
  twice, gateways/selfexec.py);
- ``venvkeeper heal --if-needed --link-root $DIR --env $S``: a stdlib venv (``python -m venv``, whose
  ``bin/python`` links are relative), healed once with ``--link-root`` before the rounds, so routed
  through ``$DIR/python3.X``: the quick look follows its links (issue 17's platform boot).

Every command runs once untimed first (warm page cache); the report is the median of the rounds.
Nothing fails on a target: the script measures and reports.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_TARGET_MS = 60.0


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise SystemExit("uv not found beside this interpreter or on PATH")
    return found


def _venvkeeper() -> list[str]:
    script = Path(sys.executable).parent / "venvkeeper"
    return [str(script)] if script.exists() else [sys.executable, "-m", "venvkeeper"]


def _time(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, check=False, env=env)
    elapsed = (time.perf_counter() - started) * 1000
    if proc.returncode != 0 or proc.stdout:
        raise SystemExit(f"{argv}: exit {proc.returncode}: {proc.stdout!r} {proc.stderr!r}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--envs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="heal-boot-") as tmp:
        root = Path(tmp)
        envs = [root / f"u{i}" / ".pythonlibs" for i in range(args.envs)]
        for env in envs:
            subprocess.run([_uv(), "venv", "--quiet", "--python", sys.executable, str(env)], check=True)
        stdlib, link_root = root / "stdlib" / ".pythonlibs", root / "links"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(stdlib)], check=True)
        routed = [*_venvkeeper(), "heal", "--env", str(stdlib), "--link-root", str(link_root)]
        subprocess.run(routed, check=True, capture_output=True)
        listing = root / "envs.txt"
        listing.write_text("".join(f"{env}\n" for env in envs))
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "heal --if-needed (1 env)": [*_venvkeeper(), "heal", "--if-needed", "--env", str(envs[0])],
            f"heal --if-needed ({args.envs} envs)": [
                *_venvkeeper(),
                "heal",
                "--if-needed",
                "--envs-from",
                str(listing),
            ],
        }
        commands["heal --if-needed --link-root (stdlib venv)"] = [
            *_venvkeeper(),
            "heal",
            "--if-needed",
            "--link-root",
            str(link_root),
            "--env",
            str(stdlib),
        ]
        under = "heal --if-needed (1 env, PYTHONPATH)"
        commands[under] = commands["heal --if-needed (1 env)"]
        environs = {under: {**os.environ, "PYTHONPATH": str(root)}}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for name, argv in commands.items():
            _time(argv, environs.get(name))
        for round_ in range(args.rounds):
            names = list(commands)
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                times[name].append(_time(commands[name], environs.get(name)))
    floor = statistics.median(times["python -c pass"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<44} {median:7.1f} ms  ({median / floor:4.2f}x python -c pass)")
    one = statistics.median(times["heal --if-needed (1 env)"])
    print(f"target: heal --if-needed under {_TARGET_MS:.0f} ms: {'met' if one < _TARGET_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
