#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 venvkeeper developers
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r'''
---
module: verify
short_description: Prove a venvkeeper environment is exactly what its lock says, and return it as facts
version_added: 0.1.0
description:
  - Runs C(venvkeeper verify --json) on the managed host. venvkeeper checks every file of the live
    generation against the manifest sealed when it was built, every package's C(RECORD), and finds
    start-up code nobody installed.
  - Never changes anything (RV(ignore:changed) is always V(false)); it runs the same in check mode.
  - The whole report is returned as the fact C(venvkeeper_verify).
  - The task fails when venvkeeper has findings, unless O(fail_on_findings=false); it always fails
    when venvkeeper cannot verify the environment at all (exit code 2, for example no environment).
author:
  - venvkeeper developers (@venvkeeper)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - venvkeeper.venvkeeper.common
attributes:
  check_mode:
    support: full
    details: Verifying changes nothing, so it runs in check mode too.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
options:
  env:
    description:
      - The environment's path (the symlink venvkeeper deploys to).
    type: path
    required: true
  project:
    description:
      - Also check the environment against this project's current lock, member sources and git status
        (on the managed host).
    type: path
  fast:
    description:
      - Compare sizes and presence only, without hashing, for frequent monitoring.
    type: bool
    default: false
  fail_on_findings:
    description:
      - Fail the task when venvkeeper finds a difference (verify's exit code 1).
      - With V(false) the task succeeds and the findings are in RV(findings) and the fact
        C(venvkeeper_verify), for a later task to decide on (for example with M(ansible.builtin.assert)).
    type: bool
    default: true
seealso:
  - module: venvkeeper.venvkeeper.deploy
  - module: venvkeeper.venvkeeper.install
'''

EXAMPLES = r'''
- name: Fail the play when the web app's environment was tampered with
  venvkeeper.venvkeeper.verify:
    env: /srv/webapp/.venv

- name: Monitor cheaply, and decide later
  venvkeeper.venvkeeper.verify:
    env: /srv/webapp/.venv
    fast: true
    fail_on_findings: false

- name: Report the hosts whose environment differs
  ansible.builtin.debug:
    msg: "{{ venvkeeper_verify.findings | length }} findings in generation {{ venvkeeper_verify.generation }}"
  when: not venvkeeper_verify.clean
'''

RETURN = r'''
clean:
  description: Whether venvkeeper found nothing.
  returned: when venvkeeper could verify
  type: bool
  sample: true
generation:
  description: The live generation that was verified (V(null) for an in-place environment).
  returned: when venvkeeper could verify
  type: int
  sample: 3
findings:
  description:
    - What differs, each with C(category), C(distribution), C(path), C(expected), C(actual) and
      C(reference) (which record disagrees).
  returned: when venvkeeper could verify
  type: list
  elements: dict
  sample: [{"category": "modified", "distribution": "tinyweb", "path": "tinyweb/__init__.py",
            "expected": "sha256=...", "actual": "sha256=...", "reference": "manifest"}]
ansible_facts:
  description: Facts set on the host.
  returned: when venvkeeper could verify
  type: dict
  contains:
    venvkeeper_verify:
      description:
        - venvkeeper's whole report (C(env), C(directory), C(kind), C(generation), C(fast), C(clean),
          C(checks), C(findings), C(files), C(bytes_hashed), C(duration_s)).
      type: dict
      returned: when venvkeeper could verify
      sample: {"env": "/srv/webapp/.venv", "clean": true, "generation": 3, "findings": [], "files": 1032}
cmd:
  description: The venvkeeper command that ran.
  returned: when venvkeeper ran
  type: list
  elements: str
  sample: [venvkeeper, verify, --env, /srv/webapp/.venv, --json]
exit_code:
  description:
    - 'venvkeeper''s exit code: 0 clean, 1 findings (with O(fail_on_findings=false)).'
    - Not named C(rc), because Ansible fails a task whose result has a non-zero C(rc).
  returned: success
  type: int
  sample: 0
rc:
  description: 'venvkeeper''s exit code when the task failed: 1 findings, 2 cannot verify.'
  returned: failure
  type: int
  sample: 2
error:
  description: The CLI's error (C(code), C(message), C(hint), C(cause), C(detail)) when it could not verify.
  returned: failure
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.venvkeeper.venvkeeper.plugins.module_utils.venvkeeper import (
    EXECUTABLE_SPEC,
    FINDINGS,
    OK,
    fail,
    run,
)


def build_argv(params):
    """The CLI's arguments for verify, from the module's options."""
    argv = ['verify', '--env', params['env']]
    if params['project']:
        argv += ['--project', params['project']]
    if params['fast']:
        argv.append('--fast')
    return argv


def describe(finding):
    """One finding in a few words: its category and what it concerns."""
    about = [str(finding[key]) for key in ('distribution', 'path') if finding.get(key)]
    return '%s (%s)' % (finding.get('category'), ', '.join(about)) if about else str(finding.get('category'))


def main():
    argument_spec = dict(
        env=dict(type='path', required=True),
        project=dict(type='path'),
        fast=dict(type='bool', default=False),
        fail_on_findings=dict(type='bool', default=True),
    )
    argument_spec.update(EXECUTABLE_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    rc, data, out, err, cmd = run(module, build_argv(module.params))
    if data is None or 'error' in data or rc not in (OK, FINDINGS):
        fail(module, rc, data, out, err, cmd, prefix='venvkeeper verify: ')
    findings = data.get('findings') or []
    result = dict(
        changed=False,
        cmd=cmd,
        exit_code=rc,
        clean=bool(data.get('clean')),
        generation=data.get('generation'),
        findings=findings,
        ansible_facts=dict(venvkeeper_verify=data),
    )
    if rc == FINDINGS and module.params['fail_on_findings']:
        shown = '; '.join(describe(finding) for finding in findings[:3])
        more = ' and %d more' % (len(findings) - 3) if len(findings) > 3 else ''
        result['msg'] = 'venvkeeper verify: %s differs from its record: %d finding(s): %s%s' % (
            data.get('env') or module.params['env'], len(findings), shown, more)
        module.fail_json(rc=rc, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
