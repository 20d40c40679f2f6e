# -*- coding: utf-8 -*-
# Copyright (c) 2026 venvkeeper developers
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT

"""What the venvkeeper modules share: run the CLI with --json, read its answer, fail with its words.

The modules never reimplement venvkeeper: every decision (would this deploy change anything, which
packages, which generation) is the CLI's, read from its JSON. The exit codes are the CLI's contract
(README.md, "Exit codes"): 0 done or nothing to do, 1 failed, 2 bad input, 3 busy, 4 a post-deploy
hook failed, 6 ``--check`` says the real command would change the environment.
"""

from __future__ import annotations

import json

# The CLI's exit codes (venvkeeper.core.exitcodes), as the modules read them.
OK = 0
FINDINGS = 1  # verify: the environment differs from its lock or manifest
HOOK_FAILED = 4
WOULD_CHANGE = 6

# The keys of a deploy or install result that the modules return as they are (see RETURN).
RESULT_KEYS = ('env', 'generation', 'previous', 'reason', 'packages', 'rebuilt', 'reused', 'hooks', 'in_place')

EXECUTABLE_SPEC = dict(executable=dict(type='path'))


def find_executable(module):
    """The venvkeeper command: the ``executable`` option, else ``venvkeeper`` on the host's PATH."""
    if module.params['executable']:
        return module.params['executable']
    return module.get_bin_path('venvkeeper', required=True)


def run(module, argv):
    """Run ``venvkeeper ARGV --json``: (rc, parsed JSON or None, stdout, stderr, the command)."""
    cmd = [find_executable(module)] + [str(arg) for arg in argv] + ['--json']
    rc, out, err = module.run_command(cmd)
    try:
        data = json.loads(out) if out.strip() else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = None
    return rc, data, out, err, cmd


def error_line(data, err, rc):
    """The CLI's error as one line: its message and hint, else the last line it printed on stderr."""
    error = (data or {}).get('error') or {}
    message = error.get('message') or ''
    if not message:
        lines = [line.strip() for line in (err or '').splitlines() if line.strip()]
        message = lines[-1] if lines else 'venvkeeper exited %d without a message' % rc
    hint = error.get('hint')
    line = '%s (hint: %s)' % (message, hint) if hint else message
    # One line, as the CLI's own `error:` line: the details stay in `error` and `stderr`.
    return ' '.join(line.split())


def fail(module, rc, data, out, err, cmd, prefix='', **extra):
    """fail_json with the CLI's one error line, its rc and what it printed."""
    msg = error_line(data, err, rc)
    module.fail_json(
        msg=prefix + msg,
        rc=rc,
        cmd=cmd,
        stdout=out,
        stderr=err,
        error=(data or {}).get('error'),
        **extra
    )


def package_lines(packages):
    """The package changes as (before, after) text: sorted ``name==version`` lines on each side."""
    packages = packages or {}
    before = []
    after = []
    for entry in packages.get('added') or []:
        after.append('%s==%s' % (entry['name'], entry['new']))
    for entry in packages.get('removed') or []:
        before.append('%s==%s' % (entry['name'], entry['old']))
    for entry in packages.get('changed') or []:
        before.append('%s==%s' % (entry['name'], entry['old']))
        after.append('%s==%s' % (entry['name'], entry['new']))
    return _text(before), _text(after)


def _text(lines):
    return ''.join(line + '\n' for line in sorted(lines))


def package_diff(env, packages):
    """Ansible's diff (before/after) of the environment's packages."""
    before, after = package_lines(packages)
    return dict(before=before, after=after, before_header='%s (before)' % env, after_header='%s (after)' % env)


def converge(module, command, argv, rolled_back):
    """deploy or install: the real command, or its ``--check`` in check mode; exit with the result.

    ``rolled_back`` says whether a hook failure (exit 4) leaves the host on its previous generation
    (a generation switch) or not (an in-place convergence has nothing to switch back to).
    """
    check = module.check_mode
    rc, data, out, err, cmd = run(module, [command] + argv + (['--check'] if check else []))
    if rc == HOOK_FAILED and data is not None:
        if rolled_back:
            prefix = 'venvkeeper %s: a post-deploy hook failed and the host rolled back: ' % command
        else:
            prefix = 'venvkeeper %s: a post-deploy hook failed (in place: nothing to roll back to): ' % command
        fail(module, rc, data, out, err, cmd, prefix=prefix, rolled_back=rolled_back, hooks=data.get('hooks', []))
    if data is None or 'error' in data or rc not in ((OK, WOULD_CHANGE) if check else (OK,)):
        fail(module, rc, data, out, err, cmd, prefix='venvkeeper %s: ' % command)
    # In check mode the exit code is the answer (6: would change); the JSON's "changed" says the same.
    # Returned as exit_code, not rc: Ansible fails any task whose result has a non-zero rc.
    changed = rc == WOULD_CHANGE if check else bool(data.get('changed'))
    result = dict(changed=changed, cmd=cmd, exit_code=rc)
    for key in RESULT_KEYS:
        if key in data:
            result[key] = data[key]
    result['check'] = check
    if module._diff and changed:
        result['diff'] = package_diff(data.get('env', ''), data.get('packages'))
    module.exit_json(**result)
