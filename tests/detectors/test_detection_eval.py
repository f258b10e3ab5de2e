"""The labelled evaluation, small: F1 per kind on three seeds, and against the baseline.

benchmarks/detection_eval.py is a script, not a package: it is loaded from its path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "detection_eval.py"
KINDS = ("runtime", "volume", "freshness")


@pytest.fixture(scope="module")
def evaluation() -> ModuleType:
    spec = importlib.util.spec_from_file_location("detection_eval", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["detection_eval"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_f1_is_at_least_0_8_per_kind_and_above_the_baseline(
    evaluation: ModuleType, seed: int
) -> None:
    result = evaluation.evaluate(seed, small=True)
    for kind in KINDS:
        ours, baseline = result.ours[kind], result.baseline[kind]
        assert ours.events > 10, kind
        assert ours.f1 >= 0.8, (kind, ours)
        assert ours.f1 > baseline.f1 + 0.05, (kind, ours, baseline)
    assert "pipewarden" in evaluation.table([result])


def test_generator_is_reproducible_and_varies_with_the_seed(evaluation: ModuleType) -> None:
    first = evaluation.make_jobs(5, small=True)
    again = evaluation.make_jobs(5, small=True)
    other = evaluation.make_jobs(6, small=True)
    assert [j.notes for j in first] == [j.notes for j in again]
    assert [r.duration for r in first[0].runs] == [r.duration for r in again[0].runs]
    assert [j.notes for j in first] != [j.notes for j in other]
