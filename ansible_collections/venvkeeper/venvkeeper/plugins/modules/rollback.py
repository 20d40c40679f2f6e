#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 venvkeeper developers
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r'''
---
module: rollback
short_description: Switch a venvkeeper environment back to a kept generation, atomically
version_added: 0.1.0
description:
  - Runs C(venvkeeper rollback --json) on the managed host, which switches O(env) to another kept
    generation in one rename.
  - With O(to), idempotent. When generation O(to) is already live the module changes nothing and reports
    RV(ignore:changed=false).
  - Without O(to) it goes back to the newest kept generation older than the live one, so every run
    changes something (like the CLI); give O(to) in a playbook that may run twice.
  - In check mode the module reads C(venvkeeper status --json) and reports the generation it would
    switch to, changing nothing.
author:
  - venvkeeper developers (@venvkeeper)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - venvkeeper.venvkeeper.common
attributes:
  check_mode:
    support: full
    details: The generation it would switch to, from C(venvkeeper status).
  diff_mode:
    support: partial
    details: The package changes of a real rollback, as C(name==version) lines; none in check mode.
  platform:
    platforms: posix
options:
  env:
    description:
      - The environment's path (the symlink venvkeeper deploys to).
    type: path
    required: true
  to:
    description:
      - The generation number to switch to. It must still be kept (see C(venvkeeper status)).
      - By default, the newest kept generation older than the live one.
    type: int
seealso:
  - module: venvkeeper.venvkeeper.deploy
  - module: venvkeeper.venvkeeper.install
'''

EXAMPLES = r'''
- name: Go back to generation 4 (changes nothing when 4 is live already)
  venvkeeper.venvkeeper.rollback:
    env: /srv/webapp/.venv
    to: 4

- name: Go back one generation (changes something on every run)
  venvkeeper.venvkeeper.rollback:
    env: /srv/webapp/.venv
  register: rolled

- name: Tell which generation is live now
  ansible.builtin.debug:
    msg: "generation {{ rolled.generation }} (was {{ rolled.previous }})"
'''

RETURN = r'''
generation:
  description: The live generation after the rollback (in check mode, the one it would switch to).
  returned: success
  type: int
  sample: 2
previous:
  description: The generation that was live before.
  returned: success
  type: int
  sample: 3
packages:
  description:
    - The package changes the switch made, each entry a dict with C(name), C(old) and C(new).
    - Empty in check mode and when nothing changed.
  returned: success
  type: dict
  sample: {"added": [], "removed": [], "changed": [{"name": "tinyweb", "old": "1.2.1", "new": "1.2.0"}]}
cmd:
  description: The venvkeeper command that ran (C(status) in check mode or when O(to) is live).
  returned: when venvkeeper ran
  type: list
  elements: str
  sample: [venvkeeper, rollback, --env, /srv/webapp/.venv, --to, 2, --json]
exit_code:
  description:
    - venvkeeper's exit code (0).
    - Not named C(rc), because Ansible fails a task whose result has a non-zero C(rc).
  returned: success
  type: int
  sample: 0
rc:
  description: venvkeeper's exit code when the task failed (2 bad input, 3 busy).
  returned: failure
  type: int
  sample: 2
error:
  description: The CLI's error (C(code), C(message), C(hint), C(cause), C(detail)) when it failed.
  returned: failure
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.venvkeeper.venvkeeper.plugins.module_utils.venvkeeper import (
    EXECUTABLE_SPEC,
    OK,
    fail,
    package_diff,
    run,
)

NO_PACKAGES = dict(added=[], removed=[], changed=[])


def plan(status, to):
    """The generation a rollback would switch to, from ``venvkeeper status``: (target, error message)."""
    current = status.get('current')
    kept = sorted(g['number'] for g in status.get('generations') or [])
    if to is None:
        older = [number for number in kept if current is not None and number < current]
        if not older:
            return None, '%s: no generation older than %s is kept' % (status.get('env'), current)
        return older[-1], None
    if to not in kept:
        return None, '%s: generation %d is not kept (kept: %s)' % (
            status.get('env'), to, ', '.join(str(n) for n in kept) or 'none')
    return to, None


def main():
    argument_spec = dict(
        env=dict(type='path', required=True),
        to=dict(type='int'),
    )
    argument_spec.update(EXECUTABLE_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    env, to = module.params['env'], module.params['to']

    if module.check_mode or to is not None:
        rc, status, out, err, cmd = run(module, ['status', '--env', env])
        if status is None or 'error' in status or rc != OK:
            fail(module, rc, status, out, err, cmd, prefix='venvkeeper status: ')
        current = status.get('current')
        target, problem = plan(status, to)
        if problem and module.check_mode:
            module.fail_json(msg='venvkeeper rollback: ' + problem, cmd=cmd)
        # Otherwise a problem is the CLI's to report, in its own words, below.
        if target == current or module.check_mode:
            module.exit_json(changed=target != current, generation=target, previous=current,
                             packages=NO_PACKAGES, cmd=cmd, exit_code=rc)

    argv = ['rollback', '--env', env] + (['--to', str(to)] if to is not None else [])
    rc, data, out, err, cmd = run(module, argv)
    if data is None or 'error' in data or rc != OK:
        fail(module, rc, data, out, err, cmd, prefix='venvkeeper rollback: ')
    result = dict(changed=True, generation=data.get('generation'), previous=data.get('previous'),
                  packages=data.get('packages') or NO_PACKAGES, cmd=cmd, exit_code=rc)
    if module._diff:
        result['diff'] = package_diff(data.get('env') or env, data.get('packages'))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
