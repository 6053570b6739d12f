"""The catalog's files read the same on libyaml's parser as on PyYAML's pure-Python one."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from fluxserve.catalog.yaml_files import SafeLoader, load_yaml


def test_the_fast_parser_is_used_and_reads_every_catalog_file_as_the_python_one_does() -> None:
    assert SafeLoader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    folder = resources.files("fluxserve.catalog")
    files = [entry for entry in folder.iterdir() if entry.name.endswith(".yaml")]
    assert len(files) == 6  # the five tools and loras.yaml
    for entry in files:
        text = entry.read_text(encoding="utf-8")
        assert load_yaml(text) == yaml.load(text, Loader=yaml.SafeLoader), entry.name


def test_it_stays_safe() -> None:
    """No Python objects from tags: the C parser is the safe one too."""
    with pytest.raises(yaml.YAMLError, match="python/object/apply"):
        load_yaml("!!python/object/apply:os.system ['true']")
