"""``python -m stampbook.cli``: the same command as ``stampbook``."""

from stampbook.cli import app

app()
