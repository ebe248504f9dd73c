"""True float32 on CUDA: TF32 off for matmuls and convolutions while a block runs.

PyTorch lets cuDNN convolutions use TF32 by default, which rounds inputs to 10 mantissa
bits. That is enough to flip a rounded phone duration now and then, so the float32
reference and the exact symbol stages of fast paths run under ``strict_fp32()``. The flags
are process-wide: a block on one thread affects others running at the same moment, which
only makes those more precise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def strict_fp32() -> Iterator[None]:
    """Run the block with TF32 disabled; restores the previous flags after it."""
    matmul, conv = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, conv
