import numpy as np
import pytest

from service.engine.datasets import load_builtin
from service.engine.errors import NonFiniteLossError, SpecError
from service.engine.network import build_network
from service.engine.training import BatchSampler, MetricRecord, Trainer, TrainingConfig, train

MLP = [
    {"type": "dense", "units": 32, "activation": "relu"},
    {"type": "dropout", "rate": 0.5},
    {"type": "dense", "units": 16, "activation": "relu"},
    {"type": "gaussian_dropout", "rate": 0.2},
    {"type": "dense", "units": 10, "activation": "softmax"},
]


@pytest.fixture(scope="module")
def digits():
    return load_builtin("digits")


def config(**overrides) -> TrainingConfig:
    spec = {"iterations": 60, "batch_size": 16, "eval_every": 10,
            "optimizer": {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9},
            "dropout_schedule": {"type": "step", "every": 20, "delta": -0.1, "min": 0.1}}
    spec.update(overrides)
    return TrainingConfig.from_dict(spec)


def run(data, cfg, *, seed=0, layers=MLP, **kwargs):
    records: list[MetricRecord] = []
    net = build_network(layers, data.input_shape, seed=seed)
    trainer = train(net, data, cfg, on_metrics=records.extend, **kwargs)
    return trainer, records


def values(records):
    return [(r.step, r.key, r.value) for r in records]


def test_same_seed_gives_bit_identical_metrics_and_weights(digits):
    a, ra = run(digits, config())
    b, rb = run(digits, config())
    assert values(ra) == values(rb)
    for key, value in a.network.state_dict().items():
        np.testing.assert_array_equal(value, b.network.state_dict()[key])
    _, rc = run(digits, config(), seed=1)
    assert values(rc) != values(ra)


def test_every_iteration_records_and_evaluations_every_k(digits):
    _, records = run(digits, config(iterations=25, eval_every=10))
    by_key: dict[str, list[int]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(r.step)
    for key in ("batch_loss", "learning_rate", "dropout_rate"):
        assert by_key[key] == list(range(1, 26))
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        assert by_key[key] == [10, 20, 25]


def test_eval_every_1_reproduces_the_seeds_four_lists(digits):
    _, records = run(digits, config(iterations=5, eval_every=1))
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        assert [r.step for r in records if r.key == key] == [1, 2, 3, 4, 5]


def test_schedule_sets_every_dropout_layer(digits):
    trainer, records = run(digits, config(iterations=41))
    rates = [layer.rate for layer in trainer.network.dropout_layers]
    # iteration 41 trains at t = 40: two steps of -0.1 from each layer's configured rate.
    assert rates == pytest.approx([0.3, 0.1])
    recorded = {r.step: r.value for r in records if r.key == "dropout_rate"}
    assert recorded[1] == pytest.approx(0.5)
    assert recorded[21] == pytest.approx(0.4)
    assert recorded[41] == pytest.approx(0.3)


def test_curriculum_schedule_starts_without_dropout_and_rises_per_layer(digits):
    trainer, records = run(digits, config(iterations=41,
                                          dropout_schedule={"type": "curriculum", "gamma": 0.05}))
    rise = 1 - np.exp(-0.05 * 40)  # iteration 41 trains at t = 40
    assert [layer.rate for layer in trainer.network.dropout_layers] == pytest.approx(
        [0.5 * rise, 0.2 * rise])
    recorded = {r.step: r.value for r in records if r.key == "dropout_rate"}
    assert recorded[1] == 0.0
    assert recorded[21] == pytest.approx(0.5 * (1 - np.exp(-0.05 * 20)))


def test_evaluation_runs_in_inference_mode(digits):
    trainer, records = run(digits, config(iterations=10, eval_every=10))
    loss, accuracy = trainer.evaluate(trainer.x_test, trainer.y_test)
    again = trainer.evaluate(trainer.x_test, trainer.y_test)
    assert (loss, accuracy) == again  # no dropout noise at evaluation
    final = {r.key: r.value for r in records if r.step == 10}
    assert final["test_loss"] == loss
    assert final["test_accuracy"] == accuracy


@pytest.mark.parametrize("overrides", [
    {},
    {"sampling": "random"},
    {"optimizer": {"type": "adam", "learning_rate": 0.01}},
    {"optimizer": {"type": "rmsprop", "learning_rate": 0.01}, "lr_schedule": {"type": "cosine"}},
    {"dropout_schedule": {"type": "linear", "from": 0.6, "to": 0.1}},
    {"dropout_schedule": {"type": "curriculum", "gamma": 0.05}},
])
def test_resume_from_checkpoint_is_bit_identical(digits, overrides):
    cfg = config(**overrides)
    full, full_records = run(digits, cfg)

    first_records: list[MetricRecord] = []
    first = Trainer(build_network(MLP, digits.input_shape, seed=0), digits, cfg)
    first.run(on_metrics=first_records.extend, should_stop=lambda: first.iteration >= 27)
    assert first.iteration == 27
    state = first.checkpoint()

    resumed = Trainer(build_network(MLP, digits.input_shape, seed=123), digits, cfg,
                      checkpoint=state)
    assert resumed.iteration == 27
    rest: list[MetricRecord] = []
    assert resumed.run(on_metrics=rest.extend) == "completed"
    assert values(first_records) + values(rest) == values(full_records)
    for key, value in full.network.state_dict().items():
        np.testing.assert_array_equal(value, resumed.network.state_dict()[key])


def test_checkpoint_from_another_architecture_is_refused(digits):
    trainer = Trainer(build_network(MLP, digits.input_shape, seed=0), digits, config())
    other = [{"type": "dense", "units": 10, "activation": "softmax"}]
    with pytest.raises(ValueError, match="architecture"):
        Trainer(build_network(other, digits.input_shape, seed=0), digits, config(),
                checkpoint=trainer.checkpoint())


def test_should_stop_is_polled_every_iteration_and_flushes(digits):
    calls = []
    trainer = Trainer(build_network(MLP, digits.input_shape, seed=0), digits, config())

    def stop() -> bool:
        calls.append(trainer.iteration)
        return trainer.iteration == 7

    records: list[MetricRecord] = []
    assert trainer.run(on_metrics=records.extend, should_stop=stop) == "stopped"
    assert calls == list(range(8))
    assert max(r.step for r in records) == 7


def test_metrics_come_in_batches_at_flush_points(digits):
    batches: list[list[MetricRecord]] = []
    trainer = Trainer(build_network(MLP, digits.input_shape, seed=0), digits,
                      config(iterations=30, eval_every=100))
    trainer.run(on_metrics=lambda b: batches.append(list(b)), flush_seconds=1e9, flush_every=10)
    assert [max(r.step for r in b) for b in batches] == [10, 20, 30]
    assert all(len(b) == 30 + (4 if i == 2 else 0) for i, b in enumerate(batches))


def test_non_finite_loss_stops_with_the_iteration_and_keeps_earlier_metrics(digits):
    cfg = config(optimizer={"type": "sgd", "learning_rate": 50.0}, iterations=200,
                 dropout_schedule={"type": "constant"}, loss="mse")
    records: list[MetricRecord] = []
    linear = [{"type": "dense", "units": 32}, {"type": "dense", "units": 10}]
    net = build_network(linear, digits.input_shape, seed=0)
    with pytest.raises(NonFiniteLossError) as info, np.errstate(all="ignore"):
        train(net, digits, cfg, on_metrics=records.extend)
    k = info.value.iteration
    assert f"loss is not finite at iteration {k}" in str(info.value)
    losses = [r.step for r in records if r.key == "batch_loss"]
    assert losses == list(range(1, k))
    assert all(np.isfinite(r.value) for r in records)


def test_epoch_sampling_visits_every_sample_once_per_epoch():
    sampler = BatchSampler("epoch", 10, 4, np.random.default_rng(0))
    drawn = np.concatenate([sampler.next() for _ in range(5)])  # 20 = two epochs
    assert sorted(drawn[:10]) == list(range(10))
    assert sorted(drawn[10:]) == list(range(10))


def test_cross_entropy_needs_softmax(digits):
    layers = [{"type": "dense", "units": 10}]
    with pytest.raises(SpecError) as info:
        Trainer(build_network(layers, digits.input_shape, seed=0), digits, config())
    assert info.value.field == "loss"
    mse = config(loss="mse")
    Trainer(build_network(layers, digits.input_shape, seed=0), digits, mse)


def test_labels_must_fit_the_outputs(digits):
    layers = [{"type": "dense", "units": 5, "activation": "softmax"}]
    with pytest.raises(SpecError, match=r"labels in \[0, 5\)"):
        Trainer(build_network(layers, digits.input_shape, seed=0), digits, config())


@pytest.mark.parametrize(("spec", "field"), [
    ({"iterations": 0, "batch_size": 2}, "iterations"),
    ({"iterations": 5, "batch_size": 2, "sampling": "sequential"}, "sampling"),
    ({"iterations": 5, "batch_size": 2, "eval_every": 0}, "eval_every"),
    ({"iterations": 5}, "batch_size"),
    ({"iterations": 5, "batch_size": 2, "optimizer": {"type": "sgd"}}, "optimizer.learning_rate"),
    ({"iterations": 5, "batch_size": 2, "epochs": 3}, "epochs"),
])
def test_invalid_training_config(spec, field):
    with pytest.raises(SpecError) as info:
        TrainingConfig.from_dict(spec)
    assert info.value.field == field


def test_eval_every_default_is_a_hundredth_of_the_run():
    assert TrainingConfig.from_dict({"iterations": 2000, "batch_size": 8}).eval_every == 20
    assert TrainingConfig.from_dict({"iterations": 50, "batch_size": 8}).eval_every == 1
