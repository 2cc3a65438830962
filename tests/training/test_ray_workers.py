"""`--workers 2`: the same stage on Ray Train's TorchTrainer (gloo, own Ray instance).

Slow: it starts a Ray instance. Run it under `flock /tmp/chatgate-live.lock`, since the live
system's tools/run.sh does `ray stop --force`, which would also stop this instance."""
from __future__ import annotations

import pytest

from services.cli import main
from services.training import runner
from services.training.config import SFTConfig

pytestmark = pytest.mark.slow


def test_two_ray_train_workers_end_with_identical_parameters(tiny, tmp_path, capsys):
    root = tmp_path / "runs"
    base = str(tiny.run(tiny.pretrain))
    assert main(["train", "sft", "--workers", "2", "--steps", "6", "--base", base, "--out", str(root),
                 "--set", "eval_every=3", "--set", "progress=false"]) == 0
    assert '"workers": 2' in capsys.readouterr().out
    run = runner.plan("sft", SFTConfig(base=base, out_root=root, steps=6, eval_every=3, workers=2))
    digests = {p.name: p.read_text() for p in run.glob("params-rank*-of2.sha256")}
    assert len(digests) == 2, digests
    assert len(set(digests.values())) == 1, digests
    # the weights moved from the base (they trained), and the saved model is those weights
    from transformers import AutoModelForCausalLM

    from services.training import loop

    assert loop.param_digest(AutoModelForCausalLM.from_pretrained(run / "model")) == next(iter(digests.values()))
    assert loop.param_digest(AutoModelForCausalLM.from_pretrained(tiny.run(tiny.pretrain) / "model")) not in digests.values()
