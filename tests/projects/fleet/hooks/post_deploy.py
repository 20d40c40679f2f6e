"""The fleet service's post-deploy hook, run by `venvkeeper install --hooks-dir` in the host's checkout.

It appends what went live to `hook.log` beside the environment (each host has its own), and fails
when the host's environment says FLEET_HOOK_FAIL=1: a host whose migration cannot run.
"""

import os
import sys
from pathlib import Path

import fleetsite

env = Path(os.environ["VENVKEEPER_ENV"])
generation = os.environ.get("VENVKEEPER_GENERATION", "?")
if os.environ.get("FLEET_HOOK_FAIL") == "1":
    print(
        f"post_deploy: FLEET_HOOK_FAIL=1 on this host; release {fleetsite.RELEASE} refused", file=sys.stderr
    )
    sys.exit(1)
with (env.parent / "hook.log").open("a") as log:
    log.write(f"generation {generation} release {fleetsite.RELEASE} cwd {Path.cwd()}\n")
print(f"post_deploy: generation {generation}, release {fleetsite.RELEASE}")
