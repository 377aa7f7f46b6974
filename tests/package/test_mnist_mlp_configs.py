"""The configs the mnist_mlp notebooks train from load, say what the notebooks say they say,
and are exactly the files the manifest ships."""
import tomllib
from pathlib import Path

import pytest

from nnkit import training as T

ASSIGNMENT = Path(__file__).resolve().parents[2] / "source" / "mnist_mlp"
CONFIGS = sorted((ASSIGNMENT / "configs").glob("*.yaml"))


def test_the_manifest_ships_exactly_the_configs():
    files = tomllib.loads((ASSIGNMENT / "manifest.toml").read_text())["files"]
    assert sorted(files) == sorted(f"configs/{p.name}" for p in CONFIGS)


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.name != "grid.yaml"], ids=lambda p: p.name)
def test_every_training_config_loads_and_writes_every_setting_out(path):
    config = T.load_config(path)
    written = {line.split(":", 1)[0] for line in path.read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    # every setting a run depends on is in the file, not left to a default that could change
    needed = set(T.TrainConfig.__dataclass_fields__) - {"momentum"}
    if config.model == "softmax":
        needed -= {"hidden_dim", "activation"}
    assert needed <= written, sorted(needed - written)
    assert config.update_rule == "sgd"  # the only rule the mnist_mlp release's optim implements


def test_the_notebooks_configs_are_what_their_text_says():
    default, relu = T.load_config(ASSIGNMENT / "configs" / "default.yaml"), T.load_config(ASSIGNMENT / "configs" / "relu.yaml")
    assert (default.model, default.activation, default.hidden_dim, default.learning_rate, default.reg) == \
        ("two_layer", "sigmoid", 128, 0.1, 1e-3)
    assert relu == default.replace(activation="relu")  # "differs from default.yaml in one line"
    assert T.load_config(ASSIGNMENT / "configs" / "softmax.yaml").model == "softmax"


def test_the_grid_loads_and_every_combination_is_a_valid_config():
    grid = T.load_grid(ASSIGNMENT / "configs" / "grid.yaml")
    combos = T.grid_configs(T.load_config(ASSIGNMENT / "configs" / "default.yaml"), grid)
    assert len(combos) == 8  # "2 x 2 x 2 = 8 runs", as the file says
