"""``stampbook serve …`` exactly as the console script runs it, with one start-up change.

uvicorn 0.54's supervisor kills a worker that has not answered its health
check within ``timeout_worker_healthcheck`` (5 s) and starts another. On this
project's loaded 2-core machine a worker's imports alone take 3-6 s (``python
-X importtime -c 'import stampbook.cli'``), so ``stampbook serve --workers 2``
can kill and restart its workers in a loop and never serve. The bench starts
it through this module with that timeout at 60 s: it only matters while a
worker starts or is hung, never for a request. (A defect of ``stampbook
serve`` reported to the lead; remove this module once serve sets it.)

Usage: ``python bench/serve.py serve --workers 2 …`` (the arguments of ``stampbook``).
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

import uvicorn

HEALTHCHECK_SECONDS = 60


def main() -> None:
    """Load the ``stampbook`` console script and run it with the longer health check."""
    uvicorn.run = functools.partial(uvicorn.run, timeout_worker_healthcheck=HEALTHCHECK_SECONDS)
    (script,) = entry_points(group="console_scripts", name="stampbook")
    script.load()()


if __name__ == "__main__":
    main()
