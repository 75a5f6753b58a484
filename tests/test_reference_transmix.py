"""TransMix through the method seam, against the independent reference (tests/reference/transmix.py).

Both uses: ``mix_method: transmix`` (CutMix windows, TransMix labels) and ``label_reweighting: transmix`` on
SMMix (the SMMix paper's Tab. 6). Deterministic setting as in test_reference_step.py: no Mixup, no dropout,
a fixed SMMix side ratio 0.5; the CutMix box is the one the trainer's own method draws next.
"""

from __future__ import annotations

import pytest
import torch
from reference.smmix_step import token_grid_of
from reference.transmix import reference_transmix_cutmix_step, reference_transmix_smmix_step
from test_reference_step import confident, fixed_batch, gradients, reference_config, trainer_step
from tiny_models import tiny_deit, tiny_pvt, tiny_swin, tiny_vit

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.data.transforms import collate_image_batch

BUILDERS = {
    "vit": lambda: tiny_vit(),
    "deit": lambda: tiny_deit(),
    "pvt": lambda: tiny_pvt(drop_path_rate=0.0),
}


def twin_of(model: torch.nn.Module) -> torch.nn.Module:
    twin = type(model)(model.config)
    twin.load_state_dict(model.state_dict())
    return twin.train()


def assert_same_gradients(reference_model: torch.nn.Module, model: torch.nn.Module) -> None:
    expected, observed = gradients(reference_model), gradients(model)
    assert set(expected) == set(observed)
    for name, grad in expected.items():
        torch.testing.assert_close(
            observed[name], grad, rtol=1e-3, atol=1e-5, msg=lambda text, name=name: f"{name}: {text}"
        )


def assert_reweighted(lambdas: list[float], area: float) -> None:
    """The attention share must move λ, or the test could not tell TransMix from the area share."""
    assert max(abs(value - area) for value in lambdas) > 1e-3


@pytest.mark.parametrize("architecture", sorted(BUILDERS))
def test_transmix_cutmix_step_equals_the_reference(tmp_path, architecture):
    torch.manual_seed(0)
    model = confident(BUILDERS[architecture]())
    batch = fixed_batch()
    trainer = SMMixTrainer(
        model=model, args=reference_config(tmp_path, mix_method="transmix"), data_collator=collate_image_batch
    )
    size = tuple(batch["pixel_values"].shape[-2:])
    state = trainer.method.state_dict()
    box = trainer.method.draw(size, trainer.probe.token_grid(size)).box  # the box of the next step
    trainer.method.load_state_dict(state)

    reference_model = twin_of(model)
    expected = reference_transmix_cutmix_step(reference_model, batch["pixel_values"], batch["labels"], box)
    expected["loss"].backward()
    observed = trainer_step(trainer, batch)

    assert_reweighted(expected["lambdas"], expected["area"])
    for name in ("loss", "loss_cls"):
        assert observed[name] == pytest.approx(float(expected[name]), abs=1e-5), name
    assert "loss_fine" not in observed and "loss_con" not in observed
    assert_same_gradients(reference_model, model)


@pytest.mark.parametrize("architecture", sorted(BUILDERS))
def test_smmix_with_transmix_labels_equals_the_reference(tmp_path, architecture):
    torch.manual_seed(0)
    model = confident(BUILDERS[architecture]())
    batch = fixed_batch()
    side = int(0.5 * token_grid_of(model, batch["pixel_values"].shape[-1])[0])

    reference_model = twin_of(model)
    expected = reference_transmix_smmix_step(reference_model, batch["pixel_values"], batch["labels"], side)
    expected["loss"].backward()
    args = reference_config(tmp_path, label_reweighting="transmix")
    observed = trainer_step(SMMixTrainer(model=model, args=args, data_collator=collate_image_batch), batch)

    assert_reweighted(expected["lambdas"], expected["area"])
    assert expected["loss_con"] > 0.05, "L_con must be large enough to expose wiring errors"
    for name in ("loss", "loss_cls", "loss_fine", "loss_con"):
        assert observed[name] == pytest.approx(float(expected[name]), abs=1e-5), name
    assert_same_gradients(reference_model, model)


@pytest.mark.parametrize("use", [{"mix_method": "transmix"}, {"label_reweighting": "transmix"}])
def test_a_model_without_a_class_token_is_refused_before_training(tmp_path, use):
    with pytest.raises(ValueError, match="no class token") as error:
        SMMixTrainer(model=tiny_swin(), args=reference_config(tmp_path, **use), data_collator=collate_image_batch)
    assert "\n" not in str(error.value)


def test_transmix_labels_need_a_window_method(tmp_path):
    with pytest.raises(ValueError, match="re-weights the label of a pasted window"):
        SMMixConfig(output_dir=str(tmp_path), mix_method="mixup", label_reweighting="transmix", use_cpu=True)
