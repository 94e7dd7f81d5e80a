"""Research scripts of the Gowalla accuracy study (docs/accuracy_study.md): not part of the product.

Run them as modules from the repository root, so that ``research.common`` and ``recommender``
import like any package (no ``sys.path`` changes)::

    .venv/bin/python -m research.gf_grid

research/README.md says what each script answered and found. BLAS threads default to two
(the study's machine had two cores); this is set here, before any script imports numpy, and
OPENBLAS_NUM_THREADS / OMP_NUM_THREADS in the environment take precedence.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")
