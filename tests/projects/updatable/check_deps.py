"""The updatable project's tests: import every dependency and print its version.

A test makes them fail for one version by listing it in a refusal file beside this script (git
ignores those files, so the work tree stays clean):

    python check_deps.py          reads refuse-tests.txt (update's baseline and candidate runs)
    python check_deps.py --live   reads refuse-live.txt  (the post-deploy hook, in the live env)

A line is ``NAME VERSION`` (that version fails the tests) or ``NAME VERSION hang`` (the tests
hang in a child process until they are killed; both pids go to hang.pid).
"""

import contextlib
import importlib
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIVE = "--live" in sys.argv[1:]

versions = {name: importlib.import_module(name).__version__ for name in ("tinydb", "tinyweb", "tinyutil")}
# The dev group: installed where update runs the tests, never deployed.
with contextlib.suppress(ImportError):
    versions["tinyextra"] = importlib.import_module("tinyextra").__version__
print(", ".join(f"{name} {version}" for name, version in versions.items()))

refusals = HERE / ("refuse-live.txt" if LIVE else "refuse-tests.txt")
for line in refusals.read_text().splitlines() if refusals.exists() else []:
    name, version, *action = line.split()
    if versions.get(name) != version:
        continue
    if action == ["hang"]:
        child = subprocess.Popen(["sleep", "300"])
        (HERE / "hang.pid").write_text(f"{os.getpid()} {child.pid}\n")
        child.wait()
    # Far over SMTP's 998-octet line limit: a mail that carries this output must fold it.
    print("refused: " + " ".join([f"{name}=={version}"] * 150))
    print(f"FAILED: {name} {version} is refused by {refusals.name}")
    sys.exit(1)
print("ok")
