"""The Lightning callback captures the reference during validation only."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from trustops.capture import open_capture
from trustops.models.networks import build_classifier


def _module():
    import lightning.pytorch as pl

    class LitClassifier(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = build_classifier("mlp", (64,), 10)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.model(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.model(x)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    return LitClassifier()


@pytest.mark.parametrize("backend", ["native", "smdebug"])
def test_callback_captures_every_validation_pass_but_not_the_sanity_check(tmp_path, backend):
    import lightning.pytorch as pl

    from trustops.capture import ActivationCaptureCallback

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.rand(24, 64, generator=g) * 16, torch.randint(0, 10, (24,), generator=g))
    train, val = DataLoader(data, batch_size=8), DataLoader(data, batch_size=8)
    callback = ActivationCaptureCallback(tmp_path / "ref", backend=backend, include=r"features\.0")
    trainer = pl.Trainer(
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=2,
        num_sanity_val_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        callbacks=[callback],
    )
    module = _module()
    trainer.fit(module, train, val)
    reader = open_capture(tmp_path / "ref")
    assert reader.steps("eval") == [0, 1, 2, 3]  # 2 epochs x 2 batches; no sanity-check step
    assert reader.steps("predict") == []
    steps = list(reader.iter_steps("eval"))
    assert [(s.meta["epoch"], s.meta["batch_idx"]) for s in steps] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert set(steps[0].tensors) == {"penultimate", "features.0"}
    where = reader.last_pass("eval")
    assert where == {"epoch": 1}
    reference = reader.load("eval", "penultimate", where=where)
    xs = torch.cat([data.tensors[0][:8], data.tensors[0][8:16]])
    with torch.no_grad():
        assert torch.allclose(reference, module.model.eval().embed(xs))
    assert all(not m._forward_hooks for m in module.modules())
