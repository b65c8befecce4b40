"""The mutation check's list of planted bugs (tests/mutation) stays in step with the source: CI runs this, not the
check itself (python -m tests.mutation, about 20 minutes; tests/README.md)."""
from pathlib import Path

import pytest

from tests.mutation.mutants import MUTANTS
from tests.mutation.probes import PROBES
from tests.mutation.runner import PatchError, check_list, patched

REPO = Path(__file__).resolve().parents[1]


def test_every_mutant_applies_once_to_the_current_source():
    check_list(MUTANTS)


def test_mutants_have_unique_ids_existing_tests_and_probes():
    assert len({m.id for m in MUTANTS}) == len(MUTANTS)
    for m in MUTANTS:
        assert all((REPO / path).exists() for path in m.tests), m.id
        assert m.probe is None or m.probe in PROBES, m.id


def test_a_snippet_that_is_not_there_once_is_refused():
    (mutant,) = [m for m in MUTANTS if m.id == "mul-swapped"]
    with pytest.raises(PatchError, match="occurs 0 times"):
        patched("", mutant)
    with pytest.raises(PatchError, match="occurs 2 times"):
        patched(mutant.original * 2, mutant)
