"""Shipped models: the card's figures come from one source and the metadata holds no local paths.

The parameter count and the ONNX verification errors a card quotes are those of the weights and
the export manifest; the card names the commit its evaluation ran at; ``lewm_meta.json`` holds no
absolute path (it travels with the weights to other machines)."""
import json
import re
from pathlib import Path

import pytest

from lewm_ros.model import count_parameters, load_model_dir

MODELS = sorted(p for p in (Path(__file__).resolve().parents[2] / 'models').iterdir() if (p / 'config.json').is_file())


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.mark.parametrize('model_dir', MODELS, ids=lambda p: p.name)
def test_metadata_holds_no_absolute_path(model_dir):
    meta = json.loads((model_dir / 'lewm_meta.json').read_text())
    absolute = [s for s in _strings(meta) if re.search(r'(^|\s)(/|~/|[A-Za-z]:\\)', s)]
    assert not absolute, f'{model_dir.name}/lewm_meta.json: absolute paths {absolute}'


@pytest.mark.parametrize('model_dir', MODELS, ids=lambda p: p.name)
def test_card_quotes_the_weights_parameter_count_and_names_its_commit(model_dir):
    card = (model_dir / 'README.md').read_text()
    model, _ = load_model_dir(model_dir)
    assert f'{count_parameters(model):,} parameters' in card
    assert re.search(r'commit `[0-9a-f]{7,40}`', card), 'the card names the commit its numbers were measured at'
    assert 'development machine' not in card and '/work/' not in card
