"""Exact rewrites of a trained PtychoPINN's CNN for inference (same outputs, fewer operations).

They act on the copy that :class:`~fly64_train.backends.torch.loaded_model.TorchLoadedModel`
predicts with; the model a user loads stays as trained.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """``model`` (put in eval mode) with every Conv2d -> BatchNorm2d pair of a Sequential fused into one Conv2d.

    The BatchNorm becomes an ``nn.Identity`` so the Sequential's indices stay as they were.
    """
    model.eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = nn.Identity()
    return model
