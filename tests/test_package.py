"""The package as a whole: every module under lib/tradeoffs is device-agnostic."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_cuda_calls_in_the_library():
    """Device-agnostic: tensors follow the input's device, never a hard-coded .cuda()."""
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "lib" / "tradeoffs").rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\.cuda\(\)", line)]
    assert not offenders
