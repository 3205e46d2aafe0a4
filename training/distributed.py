# Copyright 2026 eigen_depth_ros contributors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Devices and processes of a training run.

The torchrun job, the GPU of each process, deterministic CUDA kernels and the
mixed-precision format.

Kept apart from the training loop (:mod:`eigen_depth_training.train`) so that the loop reads
on its own. Everything here that does not need a GPU is a pure function with a CPU test.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
import os
from typing import Any, Iterator

from eigen_depth_ros.core.inference import select_device
import torch
import torch.distributed as dist

from .options import DEFAULT_DIST_TIMEOUT_MIN

CUBLAS_WORKSPACE = ':4096:8'
"""``CUBLAS_WORKSPACE_CONFIG`` that makes cuBLAS deterministic (CUDA >= 10.2)."""


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly single-process) job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    distributed: bool

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and saves."""
        return self.rank == 0


def rank_cuda_index(local_rank: int, visible: int,
                    visible_env: str | None = None) -> int:
    """
    Return the CUDA device index of the process with ``local_rank``: ``local_rank`` itself.

    :param visible: CUDA devices this process sees (``torch.cuda.device_count()``).
    :param visible_env: ``CUDA_VISIBLE_DEVICES`` as set, for the message.
    :raises ValueError: when ``local_rank`` is beyond the visible devices, saying what to do
        (a scheduler that gives each task one GPU, e.g. SLURM ``--gpus-per-task=1``, shows
        every process its GPU as ``cuda:0`` while ``LOCAL_RANK`` counts on).
    """
    if 0 <= local_rank < visible:
        return local_rank
    shown = 'unset' if visible_env is None else repr(visible_env)
    raise ValueError(
        f'LOCAL_RANK={local_rank} but this process sees {visible} CUDA device(s) '
        f'(CUDA_VISIBLE_DEVICES {shown}). If the scheduler gives each task its own GPU '
        '(e.g. SLURM --gpus-per-task=1), run one torchrun per node over all its GPUs '
        '(srun --ntasks-per-node=1 --gpus-per-node=K torchrun --nproc-per-node=K ...), or '
        'set LOCAL_RANK=0 in each task; otherwise start at most as many processes per node '
        'as it has GPUs')


def setup_distributed(device_spec: str = 'auto', backend: str = 'auto',
                      timeout_min: float = DEFAULT_DIST_TIMEOUT_MIN) -> DistContext:
    """
    Join the torchrun job described by the environment, or run alone.

    torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
    ``MASTER_PORT``; without them (or with ``WORLD_SIZE`` 1) the process runs alone. Under
    torchrun on CUDA each process takes ``cuda:LOCAL_RANK`` (:func:`rank_cuda_index`). The
    process group waits up to ``timeout_min`` minutes in a collective.

    :raises ValueError: for an unknown device spec, a CUDA device that is not there, or a
        ``LOCAL_RANK`` beyond the visible GPUs.
    """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size <= 1:
        return DistContext(0, 1, 0, select_device(device_spec), False)
    rank = int(os.environ['RANK'])
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    device = select_device(device_spec)
    if device.type == 'cuda':
        index = rank_cuda_index(local_rank, torch.cuda.device_count(),
                                os.environ.get('CUDA_VISIBLE_DEVICES'))
        device = torch.device('cuda', index)
        torch.cuda.set_device(device)
    if backend == 'auto':
        backend = 'nccl' if device.type == 'cuda' else 'gloo'
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method='env://', rank=rank,
                                world_size=world_size, timeout=timedelta(minutes=timeout_min))
    return DistContext(rank, world_size, local_rank, device, True)


def barrier(ctx: DistContext) -> None:
    """Wait for every process of a distributed job (nothing when alone)."""
    if ctx.distributed:
        dist.barrier()


def all_reduce(ctx: DistContext, tensor: torch.Tensor, op: Any = None) -> torch.Tensor:
    """Sum (or ``op``) ``tensor`` over the processes in place and return it."""
    if ctx.distributed:
        dist.all_reduce(tensor, op=op or dist.ReduceOp.SUM)
    return tensor


def all_gather(ctx: DistContext, value: Any) -> list[Any]:
    """Return ``value`` of every process in rank order (``[value]`` when alone)."""
    if not ctx.distributed:
        return [value]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def data_parallel(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """Wrap ``model`` in DistributedDataParallel in a distributed job (alone: ``model``)."""
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel
    ids = [ctx.device.index] if ctx.device.type == 'cuda' else None
    return DistributedDataParallel(model, device_ids=ids)


def leave_distributed(ctx: DistContext) -> None:
    """Leave the process group that :func:`setup_distributed` joined (nothing when alone)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def deterministic_wanted(mode: str, device: torch.device) -> bool:
    """``--deterministic``: ``on``, ``off``, or ``auto`` (on for CUDA, where it matters)."""
    return mode == 'on' or (mode == 'auto' and device.type == 'cuda')


@contextmanager
def determinism(enabled: bool) -> Iterator[dict[str, Any]]:
    """
    Use deterministic CUDA kernels in the block, so that ``--resume`` is bit-exact on a GPU.

    cuDNN picks convolution algorithms by heuristics or benchmarks, and some use atomic
    adds: two runs of the same steps differ in the last bits. Enabled, this sets
    ``CUBLAS_WORKSPACE_CONFIG`` (unless set; cuBLAS reads it when its handle is created, so
    the block must start before the first matrix multiply on the GPU), cuDNN deterministic
    and not benchmarking, and ``torch.use_deterministic_algorithms(True, warn_only=True)``:
    an operation without a deterministic kernel warns, naming itself, instead of stopping
    the run. The previous settings come back at the end (the environment variable stays).
    On the CPU training is bit-exact either way. Disabled, nothing is changed.

    :return: (as the context value) what was set, for the log.
    """
    if not enabled:
        yield {'deterministic': False}
        return
    cudnn = torch.backends.cudnn
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                cudnn.deterministic, cudnn.benchmark)
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', CUBLAS_WORKSPACE)
    cudnn.deterministic, cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield {'deterministic': True,
               'cublas_workspace_config': os.environ['CUBLAS_WORKSPACE_CONFIG']}
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        cudnn.deterministic, cudnn.benchmark = previous[2], previous[3]


def amp_dtype_for(device: torch.device, bf16_supported: bool | None = None) -> torch.dtype:
    """
    Return the autocast dtype of ``--amp`` on ``device``.

    bfloat16 on the CPU and on GPUs that support it (Ampere and later): it has float32's
    range, so the forward pass cannot overflow and no GradScaler is needed. float16 (with a
    GradScaler, and skipped non-finite steps) only on older GPUs.

    :param bf16_supported: whether the GPU computes in bfloat16; default
        ``torch.cuda.is_bf16_supported()``.
    """
    if device.type != 'cuda':
        return torch.bfloat16
    if bf16_supported is None:
        with torch.cuda.device(device):
            bf16_supported = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16_supported else torch.float16
