"""A quick run of the storefront simulator (``make simulate`` is the benchmark): a small
population against the real production server, a retraining halfway, and the simulator's own checks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAST_LINE = re.compile(
    r"simulate: control ctr (\S+), default ctr (\S+), difference (\S+) \[(\S+), (\S+)\], verdict (.+); "
    r"rejected items shown again: (\d+); events acknowledged (\d+), stored (\d+)"
)


@pytest.mark.slow
def test_a_small_simulation_passes_its_checks(tmp_path):
    done = subprocess.run(
        [sys.executable, "benchmarks/simulate.py", "--sessions", "300", "--customers", "400", "--items", "150", "--purchases", "6000",
         "--threads", "4", "--workdir", str(tmp_path / "simulate")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    last = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout + done.stderr
    found = LAST_LINE.fullmatch(last)
    assert found, last
    control, default, estimate, low = (float(found.group(k)) for k in (1, 2, 3, 4))
    assert default > control and estimate == pytest.approx(default - control, abs=1e-3) and low > 0
    assert found.group(6) == "default leading" and found.group(7) == "0" and found.group(8) == found.group(9)
    assert (tmp_path / "simulate" / "report.html").is_file()
