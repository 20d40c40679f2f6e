# -*- coding: utf-8 -*-
# Copyright (c) 2026 venvkeeper developers
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT

from __future__ import annotations


class ModuleDocFragment(object):
    """The option every module of the collection has: which venvkeeper CLI to run."""

    DOCUMENTATION = r'''
options:
  executable:
    description:
      - Path of the C(venvkeeper) command to run on the managed host.
      - By default C(venvkeeper) is looked up on E(PATH) and in the usual system directories,
        like M(ansible.builtin.pip) finds C(pip).
      - Use this when venvkeeper is installed in a virtual environment or as a uv tool,
        for example V(/opt/venvkeeper/bin/venvkeeper).
    type: path
requirements:
  - venvkeeper on the managed host (the C(venvkeeper) command, with C(--json) support).
notes:
  - The module runs the venvkeeper CLI with C(--json) and reports what it printed; the CLI's
    error message and hint become the task's C(msg), its exit code C(rc).
'''
