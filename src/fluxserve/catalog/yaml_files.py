"""Reading the catalog's YAML files with libyaml's parser where PyYAML has it.

PyYAML's pure-Python parser takes ~60 ms of CPU for the five tool files, and every process that
serves (the API, each worker, each command) reads them at start; libyaml's reads them in ~8 ms.
Both build the same data from these files (tests/catalog/test_yaml_files.py); a PyYAML built
without libyaml falls back to the pure-Python parser.
"""

from __future__ import annotations

from typing import IO, Any

import yaml

SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(source: str | IO[str]) -> Any:
    """``yaml.safe_load``, on the fast parser when there is one."""
    return yaml.load(source, Loader=SafeLoader)
