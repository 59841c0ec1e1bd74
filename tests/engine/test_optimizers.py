import numpy as np
import pytest

from service.engine.errors import SpecError
from service.engine.optimizers import build_optimizer


def reference_step(kind, w, g, state, lr, t, **h):
    """Textbook updates, written independently of the engine."""
    wd = h.get("weight_decay", 0.0)
    g = g + wd * w
    if kind == "sgd":
        mu = h.get("momentum", 0.0)
        v = mu * state.get("v", 0) + g
        state["v"] = v
        d = g + mu * v if h.get("nesterov") else v
        return w - lr * d
    if kind == "adagrad":
        state["s"] = state.get("s", 0) + g * g
        return w - lr * g / (np.sqrt(state["s"]) + 1e-8)
    if kind == "rmsprop":
        state["s"] = 0.9 * state.get("s", 0) + 0.1 * g * g
        return w - lr * g / (np.sqrt(state["s"]) + 1e-8)
    b1, b2 = 0.9, 0.999
    state["m"] = b1 * state.get("m", 0) + (1 - b1) * g
    state["v"] = b2 * state.get("v", 0) + (1 - b2) * g * g
    m_hat = state["m"] / (1 - b1**t)
    v_hat = state["v"] / (1 - b2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + 1e-8)


@pytest.mark.parametrize(("spec"), [
    {"type": "sgd"},
    {"type": "sgd", "momentum": 0.9},
    {"type": "sgd", "momentum": 0.9, "nesterov": True},
    {"type": "sgd", "momentum": 0.5, "weight_decay": 0.01},
    {"type": "adagrad"},
    {"type": "rmsprop", "weight_decay": 0.001},
    {"type": "adam"},
    {"type": "adam", "weight_decay": 0.1},
])
def test_updates_match_textbook_formulas(spec):
    rng = np.random.default_rng(0)
    optimizer = build_optimizer({**spec, "learning_rate": 0.05})
    params = {"layers.0.weight": rng.standard_normal((3, 2)),
              "layers.0.bias": rng.standard_normal(2)}
    expected = {k: v.copy() for k, v in params.items()}
    states = {k: {} for k in params}
    hyper = {k: v for k, v in spec.items() if k != "type"}
    for t in range(1, 6):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        optimizer.step(params, grads, 0.05)
        for key in params:
            h = hyper if key.endswith("weight") else {**hyper, "weight_decay": 0.0}
            expected[key] = reference_step(spec["type"], expected[key], grads[key], states[key],
                                           0.05, t, **h)
    for key in params:
        np.testing.assert_allclose(params[key], expected[key], rtol=1e-12)


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(0)
    params = {"w.weight": rng.standard_normal((4, 4))}
    grads = [{"w.weight": rng.standard_normal((4, 4))} for _ in range(6)]
    a = build_optimizer({"type": "adam", "learning_rate": 0.01})
    for g in grads[:3]:
        a.step(params, g, 0.01)
    scalars, arrays = a.state_dict()
    b = build_optimizer({"type": "adam", "learning_rate": 0.01})
    b.load_state_dict(scalars, arrays)
    pa, pb = {"w.weight": params["w.weight"].copy()}, {"w.weight": params["w.weight"].copy()}
    for g in grads[3:]:
        a.step(pa, g, 0.01)
        b.step(pb, g, 0.01)
    np.testing.assert_array_equal(pa["w.weight"], pb["w.weight"])


@pytest.mark.parametrize(("spec", "field"), [
    ({"type": "sgd"}, "optimizer.learning_rate"),
    ({"type": "sgd", "learning_rate": -1}, "optimizer.learning_rate"),
    ({"type": "sgd", "learning_rate": 0.1, "momentum": 1.0}, "optimizer.momentum"),
    ({"type": "sgd", "learning_rate": 0.1, "nesterov": True}, "optimizer.nesterov"),
    ({"type": "adam", "learning_rate": 0.1, "beta1": 2}, "optimizer.beta1"),
    ({"type": "adam", "learning_rate": 0.1, "momentum": 0.9}, "optimizer.momentum"),
    ({"type": "lbfgs", "learning_rate": 0.1}, "optimizer.type"),
])
def test_invalid_specs_name_the_field(spec, field):
    with pytest.raises(SpecError) as info:
        build_optimizer(spec)
    assert info.value.field == field
