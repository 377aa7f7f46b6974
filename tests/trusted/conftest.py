"""Fixtures of fcnets's trusted-check tests (the kit and `use_sandbox` come from tests/conftest.py)."""
import numpy as np
import pytest


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A submission folder with the three saved models, trained briefly (not necessarily above the bar)."""
    from nnkit.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
    from nnkit.data_utils import load_dataset
    from nnkit.features import load_feature_dataset
    from nnkit.solver import Solver, save_model

    state = np.random.get_state()
    np.random.seed(0)
    data = load_dataset("embedded")
    feats = load_feature_dataset("embedded")
    sub = tmp_path_factory.mktemp("submission")
    nets = {"two_layer_net": (TwoLayerNet(input_dim=3072, hidden_dim=50, num_classes=10, weight_scale=1e-2), data),
            "fc_net": (FullyConnectedNet([50], input_dim=3072, num_classes=10, weight_scale=1e-2), data),
            "features_net": (TwoLayerNet(input_dim=154, hidden_dim=50, num_classes=10, weight_scale=1e-2), feats)}
    for name, (model, d) in nets.items():
        Solver(model, d, update_rule="adam", optim_config={"learning_rate": 2e-3}, num_epochs=3,
               batch_size=100, verbose=False, progress=False).train()
        save_model(model, sub / "models" / f"{name}.npz")
    np.random.set_state(state)
    return sub, {"images": data, "features": feats}
