"""Part 5: unit selection by outgoing weight, the roughness measure, a quick run."""
import json

import numpy as np

from conftest import require_data
from experiments import part5_hidden_units
from experiments.common import faces


def test_units_for_actor_takes_the_largest_outgoing_weights():
    model = faces.make_mlp(4, 5, 2, np.random.default_rng(0))
    model.layers[-1].weight.data[1] = [0.1, -2.0, 0.7, 0.3, 0.9]
    units, outgoing = faces.units_for_actor(model, 1, 3)
    assert units.tolist() == [4, 2, 3]
    np.testing.assert_allclose(outgoing, [0.9, 0.7, 0.3])


def test_roughness_separates_noise_from_smooth_images():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((3, 32, 32))
    smooth = np.tile(np.sin(np.linspace(0, np.pi, 32)), (3, 32, 1))
    assert np.all(np.abs(part5_hidden_units.roughness(noise) - 1) < 0.1)
    assert np.all(part5_hidden_units.roughness(smooth) < 0.05)


def test_quick_run_covers_the_grid(tmp_path):
    require_data("facescrub/images")
    part5_hidden_units.main(["--quick", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    settings = {(g["l2"], g["size"]) for g in metrics["grid"]}
    assert settings == {(l2, size) for l2 in part5_hidden_units.L2_VALUES for size in part5_hidden_units.SIZES}
    assert set(metrics["units"]) == set(part5_hidden_units.SHOWN_ACTORS)
    assert {"units.png", "grid.png", "summary.md", "health.png"} <= {p.name for p in tmp_path.iterdir()}
    assert metrics["health"]["shapes"]["layers.0.weight"][1] == part5_hidden_units.SIZES[0] ** 2
