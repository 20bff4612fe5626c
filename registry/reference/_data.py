"""Loading of the JSON files shipped in ``registry/reference/data``."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load_json(name: str) -> Any:
    """Return the parsed content of a shipped data file (read once per process)."""
    # importlib.resources keeps this working from a wheel or a zipped install, not only a checkout.
    resource = resources.files("registry.reference") / "data" / name
    with resource.open("r", encoding="utf-8") as handle:
        return json.load(handle)
