"""Every guard in ``tests/mutations.py`` still finds the code it breaks, exactly once.

``.ci/run`` runs the mutations after the suite under ``set -e``: one whose original text was edited
away stops there, before the rest of them, ruff and mypy. This fails in the suite instead, naming it.
"""

from __future__ import annotations

import pytest

import mutations


@pytest.mark.parametrize("mutation", mutations.MUTATIONS, ids=lambda m: m.name)
def test_each_edit_finds_its_original_once(mutation: mutations.Mutation) -> None:
    text = (mutations.SRC / mutation.path).read_text()
    counts = [text.count(original) for original, _ in mutation.edits]
    assert counts == [1] * len(mutation.edits), f"{mutation.path}: {counts}"
