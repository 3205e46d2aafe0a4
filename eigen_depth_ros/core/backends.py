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
Inference backends: ways to run the network's forward pass, each selectable by name.

Every backend turns a normalised float32 input (N, 3, H_in, W_in) on its device into
float32 **log depth** (N, 1, H_out, W_out), like ``EigenDepthNet.forward``; they differ in
number formats, memory layout and runtime. Measured on the development CPU (2 Xeon cores with
AVX-512 and AMX), see docs/speed.md:

=================  ======  ==============================================================
name               device  what it does
=================  ======  ==============================================================
``eager``          any     float32 PyTorch, NCHW: the reference every other one is
                           checked against
``channels_last``  any     float32, NHWC memory layout (oneDNN convolutions and pools
                           without layout reorders)
``bf16``           any     bfloat16 weights and activations (fp32 accumulation), output
                           conv in float32; channels-last on CPU (AMX / AVX512-BF16)
``int8``           cpu     the fully connected layers 6 and 7 (95 % of the weight bytes)
                           dynamically quantised to int8, per output channel; convs float32
                           channels-last
``bf16_int8``      cpu     ``int8`` fully connected layers, coarse convolutions in
                           bfloat16, fine stack (which makes the output) in float32
``compile``        any     ``torch.compile`` (Inductor, needs a C++ compiler on CPU) of the
                           float32 network; compiles on first use (tens of seconds)
``onnx``           any     ONNX Runtime on the exported graph (CUDA execution provider on a
                           GPU when onnxruntime-gpu is installed, else CPU)
``fp16``           cuda    float16 weights and activations (deprecated ``half=True`` too)
=================  ======  ==============================================================

On CUDA any of ``eager``, ``channels_last``, ``bf16`` and ``fp16`` takes the suffix
``+graph`` (e.g. ``fp16+graph``): the forward pass is captured once per input shape in a
CUDA graph and replayed, which removes the per-layer launch cost that dominates a batch-1
network this small. Every CUDA call of a backend (capture, replay, conversions) runs with
the backend's device made current (:func:`device_context`), so ``cuda:1`` works like
``cuda:0``. The CUDA code paths are written to the PyTorch documentation and checked on the
CPU where their logic allows; ``eigen-depth gpu-check`` proves them on a GPU in minutes.

**TF32 on CUDA is off** for every backend: :func:`build_backend` sets float32 matrix
multiplies and cuDNN convolutions to full float32 (``ieee``) explicitly, so ``eager`` on
CUDA is a true float32 reference (it agrees with the CPU to about 1e-5 in log depth);
PyTorch's own default leaves TF32 on for cuDNN convolutions. Low precision is what
``bf16`` and ``fp16`` are for. :func:`cuda_tf32_state` reports the setting (the bench
records it).

``auto`` picks :func:`default_backend` for the device: ``bf16_int8`` on a CPU with native
bfloat16 support, ``int8`` on other CPUs, ``fp16+graph`` on CUDA.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
import copy
from dataclasses import dataclass
import os
from pathlib import Path
import tempfile
from typing import Any, Callable
import warnings

import torch
from torch import nn

from .model import EigenDepthNet, Stage

BACKENDS: dict[str, str] = {
    'eager': 'float32, NCHW (reference)',
    'channels_last': 'float32, channels-last memory layout',
    'bf16': 'bfloat16 weights and activations',
    'int8': 'int8 dynamic quantisation of fc6/fc7, float32 convolutions',
    'bf16_int8': 'int8 fc6/fc7, bfloat16 coarse convolutions, float32 fine stack',
    'compile': 'torch.compile of the float32 network',
    'onnx': 'ONNX Runtime on the exported graph',
    'fp16': 'float16 weights and activations (CUDA only)',
}
"""Backend names and one-line descriptions (``auto`` and the ``+graph`` suffix come on top)."""

CPU_ONLY = frozenset({'int8', 'bf16_int8'})
CUDA_ONLY = frozenset({'fp16'})
GRAPH_SUFFIX = '+graph'
GRAPHABLE = frozenset({'eager', 'channels_last', 'bf16', 'fp16'})
ONNX_OPSET = 17
"""ONNX opset of exported graphs (ONNX Runtime >= 1.12, TensorRT >= 8.5 read it)."""


def cpu_has_native_bf16() -> bool:
    """
    Tell whether this CPU computes in bfloat16 natively (x86 AVX512-BF16 or AMX, ARM BF16).

    oneDNN also runs bfloat16 on CPUs without these instructions, by emulation, and slower
    than float32; so the CPU flags (Linux ``/proc/cpuinfo``) decide. Without that file the
    answer is False.
    """
    try:
        text = Path('/proc/cpuinfo').read_text()
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(':')
        if key.strip() in ('flags', 'Features'):
            flags = set(value.split())
            return bool(flags & {'avx512_bf16', 'amx_bf16', 'bf16'})
    return False


def default_backend(device: torch.device | str) -> str:
    """
    Return the backend ``auto`` resolves to on ``device``.

    Chosen from the measurements in docs/speed.md: on a CPU ``bf16_int8`` where the CPU has
    native bfloat16 (about 3x faster than ``eager`` on the development machine; abs rel and
    RMSE changed by under 0.1 %), else ``int8``; on CUDA ``fp16+graph``.
    """
    if torch.device(device).type == 'cuda':
        return 'fp16' + GRAPH_SUFFIX
    return 'bf16_int8' if cpu_has_native_bf16() else 'int8'


def device_context(device: torch.device | str) -> AbstractContextManager:
    """
    Make ``device`` the current CUDA device for a block (nothing on other devices).

    CUDA graphs capture on the current device's stream, and new streams, events and the
    capture's memory pool belong to the current device: code for ``cuda:N`` runs inside
    this context.
    """
    device = torch.device(device)
    if device.type != 'cuda':
        return nullcontext()
    return torch.cuda.device(device)


def set_cuda_tf32(enabled: bool) -> None:
    """
    Allow (or forbid) TF32 in float32 CUDA matrix multiplies and cuDNN convolutions.

    Process-wide. Uses the ``fp32_precision`` settings of PyTorch >= 2.9 where they exist
    (``'tf32'`` or ``'ieee'``), else the older ``allow_tf32`` flags.
    """
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, 'fp32_precision') and hasattr(cudnn, 'conv'):
        precision = 'tf32' if enabled else 'ieee'
        matmul.fp32_precision = precision
        cudnn.conv.fp32_precision = precision
    else:
        matmul.allow_tf32 = enabled
        cudnn.allow_tf32 = enabled


def cuda_tf32_state() -> dict[str, bool]:
    """Return whether TF32 is allowed now: ``{'matmul': bool, 'cudnn_conv': bool}``."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, 'fp32_precision') and hasattr(cudnn, 'conv'):
        return {'matmul': matmul.fp32_precision == 'tf32',
                'cudnn_conv': cudnn.conv.fp32_precision == 'tf32'}
    return {'matmul': bool(matmul.allow_tf32), 'cudnn_conv': bool(cudnn.allow_tf32)}


def split_name(name: str) -> tuple[str, bool]:
    """Split ``'fp16+graph'`` into ``('fp16', True)``; ``'eager'`` into ``('eager', False)``."""
    name = name.strip().lower()
    if name.endswith(GRAPH_SUFFIX):
        return name[:-len(GRAPH_SUFFIX)], True
    return name, False


def check_backend(name: str, device: torch.device | str) -> str:
    """
    Resolve ``auto`` and check that backend ``name`` can run on ``device``.

    :return: the resolved name (e.g. ``'bf16_int8'`` for ``'auto'`` on this CPU).
    :raises ValueError: naming the problem, for an unknown name or a device mismatch.
    """
    device = torch.device(device)
    resolved = default_backend(device) if name.strip().lower() == 'auto' else name
    base, graph = split_name(resolved)
    if base not in BACKENDS:
        choices = ', '.join(list(BACKENDS) + ['auto'])
        raise ValueError(f'unknown backend {name!r}; choose one of {choices} '
                         f'(on CUDA optionally with {GRAPH_SUFFIX})')
    if base in CPU_ONLY and device.type != 'cpu':
        raise ValueError(f"backend {base!r} runs on the CPU only (PyTorch's dynamic int8 "
                         f'kernels); on {device} use fp16 or bf16')
    if base in CUDA_ONLY and device.type != 'cuda':
        raise ValueError(f'backend {base!r} needs a CUDA device (float16 convolutions are '
                         'slow on a CPU); use bf16 on the CPU')
    if graph and (device.type != 'cuda' or base not in GRAPHABLE):
        raise ValueError(f'{GRAPH_SUFFIX} (CUDA graphs) needs a CUDA device and one of '
                         f'{sorted(GRAPHABLE)}, got {resolved!r} on {device}')
    return f'{base}{GRAPH_SUFFIX}' if graph else base


ForwardFn = Callable[[torch.Tensor, Stage], torch.Tensor]


@dataclass
class Backend:
    """
    A prepared forward pass.

    :param name: the resolved backend name.
    :param device: where inputs must live.
    :param input_dtype: the dtype :meth:`__call__` wants its input in (it converts others).
    :param channels_last: True when the network runs in NHWC layout (inputs are made so).
    :param module: the (converted) network it runs, None for ``onnx``.
    :param forward: ``forward(x, stage)`` on an input already in ``input_dtype``.
    :param fixed_weight_bytes: weight bytes when there is no ``module`` to count (onnx).
    """

    name: str
    device: torch.device
    input_dtype: torch.dtype
    channels_last: bool
    module: nn.Module | None
    forward: ForwardFn
    fixed_weight_bytes: int = 0

    def __call__(self, x: torch.Tensor, stage: Stage = 'fine') -> torch.Tensor:
        """
        Log depth (N, 1, H_out, W_out) float32 of a normalised input (N, 3, H, W).

        Runs with :attr:`device` made current (see :func:`device_context`).
        """
        layout = torch.channels_last if self.channels_last else torch.preserve_format
        with device_context(self.device):
            x = x.to(dtype=self.input_dtype, memory_format=layout)  # no copy when it fits
            return self.forward(x, stage).float()                   # (N, 1, H_out, W_out)

    def weight_bytes(self) -> int:
        """Bytes of weights one forward pass reads (packed int8 weights count 1 byte each)."""
        if self.module is None:
            return self.fixed_weight_bytes
        return module_weight_bytes(self.module)


def module_weight_bytes(module: nn.Module) -> int:
    """
    Count the bytes of the parameters of ``module``.

    Dynamically quantised Linear layers count their packed int8 weight and float32 bias.
    """
    total = 0
    for sub in module.modules():
        if isinstance(sub, torch.ao.nn.quantized.dynamic.Linear):
            weight, bias = sub._weight_bias()
            total += weight.numel() * weight.element_size()
            total += 0 if bias is None else bias.numel() * bias.element_size()
        else:
            total += sum(p.numel() * p.element_size() for p in sub.parameters(recurse=False))
    return total


def build_backend(name: str, model: EigenDepthNet, device: torch.device | str = 'cpu',
                  onnx_path: str | os.PathLike | None = None, copy_model: bool = False
                  ) -> Backend:
    """
    Prepare backend ``name`` for ``model`` on ``device``.

    :param name: a key of :data:`BACKENDS`, ``auto``, or (CUDA) a name with ``+graph``.
    :param model: the float32 network. It is converted **in place** (moved, cast,
        quantised) unless ``copy_model`` is true, so the caller should not keep using it.
    :param device: a torch device (already resolved, e.g. by ``select_device``).
    :param onnx_path: for ``onnx``, an exported file to run (see
        :mod:`eigen_depth_ros.tools.export`); by default the model is exported to a
        temporary file, loaded, and the file removed.
    :param copy_model: convert a deep copy and leave ``model`` as it is.
    :raises ValueError: for an unknown name or a name the device cannot run.
    """
    device = torch.device(device)
    resolved = check_backend(name, device)
    base, graph = split_name(resolved)
    if device.type == 'cuda':
        set_cuda_tf32(False)  # eager is the float32 reference on CUDA too (module docstring)
    if copy_model:
        model = copy.deepcopy(model)
    model = model.eval()
    if base == 'onnx':
        return _onnx_backend(model, device, onnx_path)
    if base == 'compile':
        with device_context(device):
            model = model.to(device)
        compiled = torch.compile(model)
        return Backend(resolved, device, torch.float32, False, model,
                       lambda x, stage: compiled(x, stage=stage))
    if base in ('int8', 'bf16_int8'):
        module = _quantize_fc(model, bf16_convs=base == 'bf16_int8')
        module = module.to(memory_format=torch.channels_last)
        return Backend(resolved, device, torch.float32, True, module, _module_forward(module))
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(base, torch.float32)
    channels_last = base == 'channels_last' or (base == 'bf16' and device.type == 'cpu')
    with device_context(device):
        module = model.to(device, dtype)
    if dtype != torch.float32:
        _float32_output_layer(module)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    forward = _module_forward(module)
    if graph:
        forward = CudaGraphForward(forward)
    return Backend(resolved, device, dtype, channels_last, module, forward)


def _module_forward(module: nn.Module) -> ForwardFn:
    """``forward(x, stage)`` calling ``module``."""
    def forward(x: torch.Tensor, stage: Stage) -> torch.Tensor:
        return module(x, stage=stage)
    return forward


class _Float32Layer(nn.Module):
    """
    Run ``inner`` in float32 inside a network whose other layers run in another dtype.

    The input is cast to float32 and the output to ``dtype``. Used for the dynamically
    quantised Linear layers (which take float32 only) and for the output convolution.
    """

    def __init__(self, inner: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = inner
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``inner(x)`` computed in float32, cast to ``dtype``."""
        return self.inner(x.float()).to(self.dtype)


def _quantize_fc(model: EigenDepthNet, bf16_convs: bool) -> EigenDepthNet:
    """
    Quantise coarse fc6 and fc7 to int8; optionally run coarse conv 1-5 in bfloat16.

    Weights are quantised per output channel, activations per tensor at run time. Only the
    two Linear layers are quantised: they hold 95 % of the weight bytes and a batch-1
    forward pass reads each of their weights once, so they are bound by memory bandwidth;
    the convolutions are bound by arithmetic, where int8 would need static calibration.

    With ``bf16_convs`` the coarse convolutions (3.4 of the 5.5 GFLOP of the KITTI network)
    run in bfloat16, while the fine stack, which produces the output, stays in float32: in
    bfloat16 its convolutions changed depth by 0.1-0.4 % each on a partly trained
    checkpoint, the whole coarse stack by 0.05 % (docs/speed.md).
    """
    model = model.to('cpu', torch.float32)
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the eager API still works.
        warnings.simplefilter('ignore')
        for attr in ('fc6', 'fc7'):
            holder = nn.Sequential(getattr(model.coarse, attr))
            quantized = torch.ao.quantization.quantize_dynamic(
                holder, {nn.Linear: qconfig}, dtype=torch.qint8)[0]
            setattr(model.coarse, attr, quantized)
    if bf16_convs:
        model.coarse.features = _CastInput(model.coarse.features.to(torch.bfloat16),
                                           torch.bfloat16)
        model.coarse.fc6 = _Float32Layer(model.coarse.fc6, torch.float32)
    return model


class _CastInput(nn.Module):
    """Cast the input to ``dtype`` before ``inner`` (whose weights are in ``dtype``)."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = inner
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``inner(x)`` computed in ``dtype``."""
        return self.inner(x.to(self.dtype))


def _float32_output_layer(model: EigenDepthNet) -> None:
    """
    Run the fine stack's output convolution (conv 4) in float32, returning float32.

    Log depth near 2.3 (10 m) stored in bfloat16 has a step of 2^-6 = 0.016, a 1.6 %
    step in metres: rounding the output alone changed depth by 0.4 % on average, more
    than all other layers together. Conv 4 has one output channel (0.2 % of the FLOPs),
    so keeping it in float32 costs nothing measurable.
    """
    model.fine.conv4 = _Float32Layer(model.fine.conv4.float(), torch.float32)


class CudaGraphForward:
    """
    Capture ``forward`` in a CUDA graph per (stage, shape, dtype) and replay it.

    The input is copied into a static buffer, the graph replayed, and a copy of the static
    output returned. Capture and replay run with the input's device made current, and the
    capture gets a stream of its own on that device: ``torch.cuda.graph`` otherwise captures
    on a stream of whichever device was current when it first ran, and on ``cuda:N`` (N > 0)
    recorded an empty graph whose replay left every frame with the warm-up output.
    """

    def __init__(self, forward: ForwardFn, warmup: int = 3) -> None:
        self._forward = forward
        self._warmup = warmup
        self._graphs: dict[tuple[Any, ...], tuple[Any, torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor, stage: Stage) -> torch.Tensor:
        """Replay (capturing first if needed) the graph for ``x``'s shape and ``stage``."""
        key = (stage, str(x.device), tuple(x.shape), x.dtype)
        with device_context(x.device):
            entry = self._graphs.get(key)
            if entry is None:
                entry = self._graphs[key] = self._capture(x, stage)
            graph, static_in, static_out = entry
            static_in.copy_(x)
            graph.replay()
            return static_out.clone()

    def _capture(self, x: torch.Tensor, stage: Stage
                 ) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """Warm up on a side stream of ``x``'s device, then capture one forward pass."""
        device = x.device
        static_in = x.clone()
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm up (cuDNN choices, allocator) off-graph
            for _ in range(self._warmup):
                self._forward(static_in, stage)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=side):
            static_out = self._forward(static_in, stage)
        torch.cuda.current_stream(device).wait_stream(side)
        return graph, static_in, static_out


def export_onnx(model: EigenDepthNet, path: str | os.PathLike, stage: Stage = 'fine',
                opset: int = ONNX_OPSET, dynamic_batch: bool = True) -> Path:
    """
    Export the float32 network to an ONNX file.

    Input ``image`` (N, 3, H_in, W_in) float32, normalised as
    :func:`~eigen_depth_ros.core.model.normalize_image` does; output ``log_depth``
    (N, 1, H_out, W_out) float32. The batch axis is dynamic (named ``batch``) unless
    ``dynamic_batch`` is false. Uses the TorchScript-based exporter (``dynamo=False``),
    which needs only the ``onnx`` package.

    :return: the path written.
    """
    path, module, example = prepare_export(model, path, stage)
    axes = {'image': {0: 'batch'}, 'log_depth': {0: 'batch'}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the TorchScript exporter announces its deprecation
        torch.onnx.export(module, (example,), str(path), dynamo=False,
                          opset_version=opset, input_names=['image'],
                          output_names=['log_depth'], dynamic_axes=axes,
                          do_constant_folding=True)
    return path


def prepare_export(model: EigenDepthNet, path: str | os.PathLike, stage: Stage
                   ) -> tuple[Path, 'StageModule', torch.Tensor]:
    """
    Set up an export of ``stage``: create the folder of ``path``; return it as a Path.

    :return: ``(path, module, example)``: the float32 CPU network for ``stage`` as a
        :class:`StageModule`, and a zero input (1, 3, H_in, W_in) to trace it with.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.to('cpu', torch.float32).eval()
    cfg = model.config
    example = torch.zeros(1, 3, cfg.input_height, cfg.input_width)
    return path, StageModule(model, stage), example


class StageModule(nn.Module):
    """``model(x, stage=stage)`` as a one-argument module, for exporters."""

    def __init__(self, model: EigenDepthNet, stage: Stage) -> None:
        super().__init__()
        self.model = model
        self.stage = stage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log depth (N, 1, H_out, W_out) of the stage chosen at construction."""
        return self.model(x, stage=self.stage)


def onnx_session(path: str | os.PathLike, device: torch.device | str = 'cpu',
                 threads: int | None = None) -> Any:
    """
    Open an ONNX Runtime session for ``path`` (CUDA provider first on a CUDA device).

    :param threads: intra-op threads; default ``torch.get_num_threads()``.
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ['CPUExecutionProvider']
    if torch.device(device).type == 'cuda':
        if 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise ValueError('backend onnx on CUDA needs onnxruntime-gpu (only the CPU '
                             'provider is installed)')
        index = torch.device(device).index or 0
        providers = [('CUDAExecutionProvider', {'device_id': index}), 'CPUExecutionProvider']
    session = ort.InferenceSession(str(path), options, providers=providers)
    check_session_providers(session, device)
    return session


def check_session_providers(session: Any, device: torch.device | str) -> None:
    """
    Fail when an ONNX Runtime session for a CUDA device runs without the CUDA provider.

    ONNX Runtime falls back to the CPU provider, with a log line only, when the CUDA one
    is installed but cannot load (a missing cuDNN or CUDA library, a driver mismatch).

    :raises ValueError: naming the providers the session got.
    """
    if torch.device(device).type != 'cuda':
        return
    got = list(session.get_providers())
    if 'CUDAExecutionProvider' not in got:
        raise ValueError('backend onnx on CUDA: the CUDA execution provider failed to load '
                         f'(the session runs on {", ".join(got) or "nothing"}); check that '
                         "onnxruntime-gpu matches this machine's CUDA and cuDNN libraries "
                         '(ONNX Runtime logs the missing library at warning level)')


def _onnx_backend(model: EigenDepthNet, device: torch.device,
                  onnx_path: str | os.PathLike | None) -> Backend:
    """ONNX Runtime backend; stages other than the exported one are exported on demand."""
    sessions: dict[str, Any] = {}
    if onnx_path is not None:
        sessions['fine'] = onnx_session(onnx_path, device)

    def session_for(stage: Stage) -> Any:
        if stage not in sessions:
            with tempfile.TemporaryDirectory(prefix='eigen_depth_onnx_') as folder:
                path = export_onnx(model, Path(folder) / f'{stage}.onnx', stage=stage)
                sessions[stage] = onnx_session(path, device)  # loads the file into memory
        return sessions[stage]

    def forward(x: torch.Tensor, stage: Stage) -> torch.Tensor:
        session = session_for(stage)
        out = session.run(None, {'image': x.detach().cpu().numpy()})[0]
        return torch.from_numpy(out).to(x.device)

    session_for('fine')
    return Backend('onnx', device, torch.float32, False, None, forward,
                   fixed_weight_bytes=module_weight_bytes(model))
