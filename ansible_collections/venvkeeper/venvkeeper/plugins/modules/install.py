#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 venvkeeper developers
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r'''
---
module: install
short_description: Install a venvkeeper bundle offline into an atomic venv generation
version_added: 0.1.0
description:
  - Runs C(venvkeeper install BUNDLE --json) on the managed host. The bundle (made by C(venvkeeper pack),
    signed with C(pack --sign)) is checked whole first, then installed with no network into a new
    generation of O(env), smoke-checked, and switched to atomically.
  - Idempotent. Installing the bundle that is already live does nothing and reports RV(ignore:changed=false).
  - In check mode the module runs C(venvkeeper install --check), which changes nothing on the host and
    answers exactly whether the real install would change the environment (exit code 6) or not (exit 0).
  - In diff mode the package changes are shown as sorted C(name==version) lines, before and after.
  - Copy the bundle to the host first (for example with M(ansible.builtin.copy)); the module reads it
    on the managed host.
author:
  - venvkeeper developers (@venvkeeper)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - venvkeeper.venvkeeper.common
attributes:
  check_mode:
    support: full
    details: C(venvkeeper install --check) answers whether the install would change anything, and how.
  diff_mode:
    support: full
    details: The packages added, removed and changed, as C(name==version) lines.
  platform:
    platforms: posix
options:
  bundle:
    description:
      - The bundle file (C(.tar.gz)) on the managed host.
    type: path
    required: true
  env:
    description:
      - The environment's path. venvkeeper makes it a symlink to the live generation, kept in
        C(ENV.venvkeeper/generations/).
    type: path
    required: true
  public_key:
    description:
      - An Ed25519 public key file (as written by C(venvkeeper keygen)). The bundle is refused unless
        it is signed by the matching private key.
    type: path
  python:
    description:
      - The interpreter, a version such as V(3.12) or a path. By default, the bundle's.
    type: str
  keep:
    description:
      - How many previous generations to keep besides the live one. The CLI's default is 3.
    type: int
  in_place:
    description:
      - Converge O(env) itself instead of switching generations (a container layer). A failing hook
        then has no previous generation to switch back to.
    type: bool
    default: false
  hooks_dir:
    description:
      - A checkout of the project in which to run the bundle's post-deploy hooks (they need the
        project's files). Without it no hook runs.
    type: path
  no_hooks:
    description:
      - Run none of the bundle's post-deploy hooks, even with O(hooks_dir).
    type: bool
    default: false
seealso:
  - module: venvkeeper.venvkeeper.deploy
  - module: venvkeeper.venvkeeper.verify
  - module: venvkeeper.venvkeeper.rollback
'''

EXAMPLES = r'''
- name: Copy the signed bundle built on the controller
  ansible.builtin.copy:
    src: dist/webapp.tar.gz
    dest: /var/tmp/webapp.tar.gz
    mode: "0644"

- name: Install it offline, refusing anything not signed by our key
  venvkeeper.venvkeeper.install:
    bundle: /var/tmp/webapp.tar.gz
    env: /srv/webapp/.venv
    public_key: /etc/venvkeeper/release.pub
    hooks_dir: /srv/webapp/src
  register: installed

- name: Say which generation is live
  ansible.builtin.debug:
    msg: "generation {{ installed.generation }} ({{ installed.reason }})"
'''

RETURN = r'''
env:
  description: The environment's path, as venvkeeper resolved it.
  returned: success
  type: str
  sample: /srv/webapp/.venv
generation:
  description:
    - The live generation after the install (in check mode, the one live now).
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
      description: Packages the install adds that were not there.
      type: list
      elements: dict
      returned: success
    removed:
      description: Packages the install takes away.
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
  description: Members that were (or would be) built; a bundle carries its members' wheels, so usually empty.
  returned: success
  type: list
  elements: str
  sample: []
reused:
  description: Members installed from wheels rather than built.
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
  sample: [venvkeeper, install, /var/tmp/webapp.tar.gz, --env, /srv/webapp/.venv, --json]
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
    """The CLI's arguments for install, from the module's options."""
    argv = [params['bundle'], '--env', params['env']]
    if params['public_key']:
        argv += ['--public-key', params['public_key']]
    if params['python']:
        argv += ['--python', params['python']]
    if params['keep'] is not None:
        argv += ['--keep', str(params['keep'])]
    if params['in_place']:
        argv.append('--in-place')
    if params['hooks_dir']:
        argv += ['--hooks-dir', params['hooks_dir']]
    if params['no_hooks']:
        argv.append('--no-hooks')
    return argv


def main():
    argument_spec = dict(
        bundle=dict(type='path', required=True),
        env=dict(type='path', required=True),
        public_key=dict(type='path'),
        python=dict(type='str'),
        keep=dict(type='int'),
        in_place=dict(type='bool', default=False),
        hooks_dir=dict(type='path'),
        no_hooks=dict(type='bool', default=False),
    )
    argument_spec.update(EXECUTABLE_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    converge(module, 'install', build_argv(module.params), rolled_back=not module.params['in_place'])


if __name__ == '__main__':
    main()
