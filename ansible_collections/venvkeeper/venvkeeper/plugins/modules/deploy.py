#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 venvkeeper developers
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r'''
---
module: deploy
short_description: Deploy a uv-locked project into an atomic venv generation with venvkeeper
version_added: 0.1.0
description:
  - Runs C(venvkeeper deploy --json) on the managed host. venvkeeper converges the environment
    O(env) on the project's committed C(uv.lock), builds a new generation when anything that matters
    changed, smoke-checks it, switches O(env) to it atomically and runs the project's post-deploy hooks.
  - Idempotent. When nothing changed the CLI does nothing and the task reports RV(ignore:changed=false).
  - In check mode the module runs C(venvkeeper deploy --check), which changes nothing on the host and
    answers exactly whether the real deploy would change the environment (exit code 6) or not (exit 0).
  - In diff mode the package changes are shown as sorted C(name==version) lines, before and after.
  - The project directory is only read; venvkeeper builds from a staging copy.
author:
  - venvkeeper developers (@venvkeeper)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - venvkeeper.venvkeeper.common
attributes:
  check_mode:
    support: full
    details: C(venvkeeper deploy --check) answers whether the deploy would change anything, and how.
  diff_mode:
    support: full
    details: The packages added, removed and changed, as C(name==version) lines.
  platform:
    platforms: posix
options:
  project:
    description:
      - The project directory on the managed host (it holds C(pyproject.toml) and C(uv.lock)).
      - Passed as C(--project).
    type: path
    required: true
  env:
    description:
      - The environment's path. venvkeeper makes it a symlink to the live generation, kept in
        C(ENV.venvkeeper/generations/).
    type: path
    required: true
  python:
    description:
      - The interpreter, a version such as V(3.12) or a path. By default, what uv picks from the
        project's C(.python-version) or C(requires-python).
    type: str
  groups:
    description:
      - Dependency groups to install besides the runtime set (each becomes a C(--group)).
      - Replaces C([tool.venvkeeper] groups) from the project's C(pyproject.toml).
    type: list
    elements: str
  keep:
    description:
      - How many previous generations to keep besides the live one. The CLI's default is 3.
    type: int
  no_hooks:
    description:
      - Run none of the project's post-deploy hooks (C([tool.venvkeeper.hooks])), for example when
        building a container layer.
    type: bool
    default: false
  in_place:
    description:
      - Converge O(env) itself instead of switching generations (a container layer). A failing hook
        then has no previous generation to switch back to.
    type: bool
    default: false
seealso:
  - module: venvkeeper.venvkeeper.install
  - module: venvkeeper.venvkeeper.verify
  - module: venvkeeper.venvkeeper.rollback
'''

EXAMPLES = r'''
- name: Deploy the checked-out web app into /srv/webapp/.venv
  venvkeeper.venvkeeper.deploy:
    project: /srv/webapp/src
    env: /srv/webapp/.venv
  register: deployed

- name: Restart the service only when a new generation went live
  ansible.builtin.systemd_service:
    name: webapp
    state: restarted
  when: deployed.changed

- name: Deploy with the docs group, an explicit interpreter and two old generations kept
  venvkeeper.venvkeeper.deploy:
    project: /srv/webapp/src
    env: /srv/webapp/.venv
    python: "3.12"
    groups:
      - docs
    keep: 2

- name: A container layer, without the production migration
  venvkeeper.venvkeeper.deploy:
    project: /app
    env: /app/.venv
    in_place: true
    no_hooks: true
    executable: /opt/venvkeeper/bin/venvkeeper
'''

RETURN = r'''
env:
  description: The environment's path, as venvkeeper resolved it.
  returned: success
  type: str
  sample: /srv/webapp/.venv
generation:
  description:
    - The live generation after the deploy (in check mode, the one live now).
    - V(null) for an in-place environment.
  returned: success
  type: int
  sample: 3
previous:
  description: The generation that was live before, if any.
  returned: success
  type: int
  sample: 2
reason:
  description: Why venvkeeper did (or would do) what it did, in one line.
  returned: success
  type: str
  sample: new generation built
packages:
  description:
    - The package changes, each entry a dict with C(name), C(old) and C(new) (an empty string for
      the side a package is missing from).
  returned: success
  type: dict
  contains:
    added:
      description: Packages the deploy installs that were not there.
      type: list
      elements: dict
      returned: success
    removed:
      description: Packages the deploy takes away.
      type: list
      elements: dict
      returned: success
    changed:
      description: Packages whose version changes.
      type: list
      elements: dict
      returned: success
  sample:
    added: [{"name": "tinyutil", "old": "", "new": "1.0.0"}]
    removed: []
    changed: [{"name": "tinyweb", "old": "1.2.0", "new": "1.2.1"}]
rebuilt:
  description: The workspace members that were (or would be) built.
  returned: success
  type: list
  elements: str
  sample: [webapp]
reused:
  description: The workspace members taken from venvkeeper's wheel cache instead of being built.
  returned: success
  type: list
  elements: str
  sample: []
hooks:
  description:
    - The post-deploy hooks that ran (C(command), C(exit_code), C(ok), C(duration_s), C(output_tail)),
      or in check mode the ones that would run (C(command) only).
    - On a hook failure, the hooks that ran, the failed one last.
  returned: success, and when a post-deploy hook failed
  type: list
  elements: dict
  sample: [{"command": "python manage.py migrate", "exit_code": 0, "ok": true}]
in_place:
  description: Whether the environment was converged in place.
  returned: success
  type: bool
  sample: false
check:
  description: Whether this was a C(--check) run (check mode) that changed nothing.
  returned: success
  type: bool
  sample: false
rolled_back:
  description:
    - When a post-deploy hook failed, whether the host is back on the generation that was live before.
  returned: when a post-deploy hook failed
  type: bool
  sample: true
cmd:
  description: The venvkeeper command that ran.
  returned: when venvkeeper ran
  type: list
  elements: str
  sample: [venvkeeper, deploy, --project, /srv/webapp/src, --env, /srv/webapp/.venv, --json]
exit_code:
  description:
    - 'venvkeeper''s exit code: 0 done or nothing to do; in check mode 0 nothing would change, 6 a change would be made.'
    - Not named C(rc), because Ansible fails a task whose result has a non-zero C(rc).
  returned: success
  type: int
  sample: 0
rc:
  description: 'venvkeeper''s exit code when the task failed: 1 failed, 2 bad input, 3 busy, 4 a post-deploy hook failed.'
  returned: failure
  type: int
  sample: 2
error:
  description: The CLI's error (C(code), C(message), C(hint), C(cause), C(detail)) when it failed.
  returned: failure
  type: dict
  sample: {"code": "hook", "message": "post-deploy hook `false` exited 1; switched back to generation 2"}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.venvkeeper.venvkeeper.plugins.module_utils.venvkeeper import EXECUTABLE_SPEC, converge


def build_argv(params):
    """The CLI's arguments for deploy, from the module's options."""
    argv = ['--project', params['project'], '--env', params['env']]
    if params['python']:
        argv += ['--python', params['python']]
    for group in params['groups'] or []:
        argv += ['--group', group]
    if params['keep'] is not None:
        argv += ['--keep', str(params['keep'])]
    if params['no_hooks']:
        argv.append('--no-hooks')
    if params['in_place']:
        argv.append('--in-place')
    return argv


def main():
    argument_spec = dict(
        project=dict(type='path', required=True),
        env=dict(type='path', required=True),
        python=dict(type='str'),
        groups=dict(type='list', elements='str'),
        keep=dict(type='int'),
        no_hooks=dict(type='bool', default=False),
        in_place=dict(type='bool', default=False),
    )
    argument_spec.update(EXECUTABLE_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    converge(module, 'deploy', build_argv(module.params), rolled_back=not module.params['in_place'])


if __name__ == '__main__':
    main()
