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
Inference backends: each one's log depth against float32 eager, names, devices.

Tolerances on log depth (natural log of metres) for a network whose activations are scaled
like a trained one's (output std 0.6 around log 10 m): exact backends (channels_last,
onnx, compile) 1e-4; int8 and bf16_int8 max 0.03 and mean relative depth change 0.4 %;
bf16 max 0.06 and mean relative depth change 1 %. This small network measured 0.007 /
0.11 % (int8), 0.007 / 0.14 % (bf16_int8), 0.018 / 0.28 % (bf16); docs/speed.md has the
full-size figures.
"""
from contextlib import nullcontext
import os

from eigen_depth_ros.core import backends as backends_module
from eigen_depth_ros.core.backends import (BACKENDS, build_backend, check_backend,
                                           cpu_has_native_bf16, default_backend,
                                           module_weight_bytes)
from eigen_depth_ros.core.inference import BACKEND_ENV, DepthEstimator, single_threaded
from eigen_depth_ros.core.model import EigenDepthNet, normalize_image
from eigen_depth_ros.tools.scenes import calibrate_random_model, network_input, scene_image
import numpy as np
import pytest
from support import SMALL_KITTI
import torch

# name: (max abs diff of log depth, mean relative depth change)
TOLERANCES = {
    'eager': (1e-6, 1e-6),
    'channels_last': (1e-4, 1e-5),
    'onnx': (1e-4, 1e-5),
    'compile': (1e-4, 1e-5),
    'int8': (0.03, 0.004),
    'bf16_int8': (0.03, 0.004),
    'bf16': (0.06, 0.01),
}
SLOW = os.environ.get('EIGEN_DEPTH_SLOW_TESTS') == '1'


@pytest.fixture(scope='module')
def calibrated():
    """Build a small KITTI-geometry network with realistic activation scales, and inputs."""
    torch.manual_seed(0)
    model = EigenDepthNet(SMALL_KITTI).eval()
    x = torch.cat([network_input(scene_image(1242, 375, seed), SMALL_KITTI)
                   for seed in range(3)])                     # (3, 3, 172, 576)
    calibrate_random_model(model, x[:2])
    with torch.inference_mode():
        reference = model(x)                                  # (3, 1, 27, 142)
    return model, x, reference


@pytest.mark.parametrize('name', [
    'eager', 'channels_last', 'int8', 'bf16', 'bf16_int8', 'onnx',
    pytest.param('compile', marks=pytest.mark.skipif(
        not SLOW, reason='torch.compile takes 20-30 s on a 2-core CPU: make test-slow (or '
        'EIGEN_DEPTH_SLOW_TESTS=1) runs it, and CI does')),
])
def test_backend_close_to_eager(calibrated, name):
    model, x, reference = calibrated
    backend = build_backend(name, model, 'cpu', copy_model=True)
    with torch.inference_mode():
        out = backend(x)
        coarse = backend(x, 'coarse')
    assert out.shape == reference.shape and out.dtype == torch.float32
    assert coarse.shape == reference.shape
    diff = (out - reference).abs()
    max_diff, mean_rel = TOLERANCES[name]
    assert float(diff.max()) <= max_diff, name
    assert float(torch.expm1(diff).mean()) <= mean_rel, name
    assert backend.weight_bytes() > 0


def test_model_untouched_with_copy(calibrated):
    model, x, reference = calibrated
    build_backend('bf16_int8', model, 'cpu', copy_model=True)
    assert model.coarse.fc6.weight.dtype == torch.float32
    with torch.inference_mode():
        assert torch.equal(model(x), reference)


def test_int8_reads_fewer_weight_bytes(calibrated):
    model, _, _ = calibrated
    eager = module_weight_bytes(model)
    int8 = build_backend('int8', model, 'cpu', copy_model=True).weight_bytes()
    bf16 = build_backend('bf16', model, 'cpu', copy_model=True).weight_bytes()
    assert eager == sum(p.numel() * 4 for p in model.parameters())
    assert int8 < bf16 < eager


# /proc/cpuinfo flags of three kinds of x86 CPU (abridged): auto differs between them.
CPU_FLAGS = {
    'AMD EPYC Zen 3, AVX2 only': 'fpu sse4_2 avx f16c fma avx2 bmi2 sha_ni',
    'AMD EPYC Zen 4, AVX-512 with bf16': 'avx2 avx512f avx512bw avx512_vnni avx512_bf16',
    'Intel Sapphire Rapids, AMX': 'avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8',
    'Intel Skylake-SP, AVX-512 without bf16': 'avx2 avx512f avx512bw avx512cd avx512vl',
}
NATIVE_BF16 = {'AMD EPYC Zen 3, AVX2 only': False, 'AMD EPYC Zen 4, AVX-512 with bf16': True,
               'Intel Sapphire Rapids, AMX': True,
               'Intel Skylake-SP, AVX-512 without bf16': False}


@pytest.mark.parametrize('cpu', sorted(CPU_FLAGS))
def test_auto_follows_the_cpu_flags(cpu, monkeypatch, tmp_path):
    # The same answer on every machine the suite runs on: the flags are this test's, not
    # the machine's (cpu_has_native_bf16 reads /proc/cpuinfo).
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(f'processor\t: 0\nmodel name\t: {cpu}\nflags\t\t: '
                       f'{CPU_FLAGS[cpu]}\n\nprocessor\t: 1\nflags\t\t: {CPU_FLAGS[cpu]}\n')
    real_path = backends_module.Path
    monkeypatch.setattr(backends_module, 'Path', lambda name: real_path(
        cpuinfo if name == '/proc/cpuinfo' else name))
    assert cpu_has_native_bf16() is NATIVE_BF16[cpu]
    expected = 'bf16_int8' if NATIVE_BF16[cpu] else 'int8'
    assert default_backend('cpu') == check_backend('auto', 'cpu') == expected
    assert default_backend('cuda:0') == 'fp16+graph'  # the CPU's flags do not matter there


def test_without_cpuinfo_auto_is_int8(monkeypatch, tmp_path):
    real_path = backends_module.Path
    monkeypatch.setattr(backends_module, 'Path', lambda name: real_path(
        tmp_path / 'missing' if name == '/proc/cpuinfo' else name))
    assert not cpu_has_native_bf16() and default_backend('cpu') == 'int8'


def test_names_and_devices():
    assert check_backend('auto', 'cpu') == default_backend('cpu')
    assert default_backend('cpu') == ('bf16_int8' if cpu_has_native_bf16() else 'int8')
    assert default_backend('cuda') == 'fp16+graph'
    assert check_backend(' INT8 ', 'cpu') == 'int8'
    assert check_backend('fp16+graph', 'cuda') == 'fp16+graph'
    assert set(BACKENDS) >= {'eager', 'channels_last', 'bf16', 'int8', 'compile', 'onnx',
                             'fp16'}
    with pytest.raises(ValueError, match='unknown backend'):
        check_backend('tensorrt', 'cpu')
    with pytest.raises(ValueError, match='CPU only'):
        check_backend('int8', 'cuda')
    with pytest.raises(ValueError, match='needs a CUDA device'):
        check_backend('fp16', 'cpu')
    with pytest.raises(ValueError, match='CUDA graphs'):
        check_backend('eager+graph', 'cpu')
    with pytest.raises(ValueError, match='CUDA graphs'):
        check_backend('compile+graph', 'cuda')


def test_estimator_backends(small_checkpoint, monkeypatch):
    rgb = np.random.default_rng(0).integers(0, 255, (375, 1242, 3), dtype=np.uint8)
    eager = DepthEstimator.from_checkpoint(small_checkpoint, device='cpu')
    assert eager.backend.name == 'eager' and not eager.half
    monkeypatch.setenv(BACKEND_ENV, 'int8')
    int8 = DepthEstimator.from_checkpoint(small_checkpoint, device='cpu')
    assert int8.backend.name == 'int8'
    auto = DepthEstimator.from_checkpoint(small_checkpoint, device='cpu', backend='auto',
                                          half=True)
    assert auto.backend.name == default_backend('cpu') and not auto.half
    ref = eager.predict(rgb).depth
    for estimator in (int8, auto):
        depth = estimator.predict(rgb).depth
        assert depth.shape == ref.shape == (27, 142) and depth.dtype == np.float32
        assert np.allclose(depth, ref, rtol=0.02)
        full = estimator.predict(rgb, resolution='input').depth
        assert full.shape == (375, 1242) and np.isnan(full[0, 0])
    with pytest.raises(ValueError, match='unknown backend'):
        DepthEstimator.from_checkpoint(small_checkpoint, device='cpu', backend='fast')


def test_build_is_single_threaded_and_restores(small_checkpoint):
    before = torch.get_num_threads()
    with single_threaded(torch.device('cpu')):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    DepthEstimator.from_checkpoint(small_checkpoint, device='cpu', backend='int8')
    assert torch.get_num_threads() == before


def test_preprocess_feeds_a_channels_last_backend(small_checkpoint):
    est = DepthEstimator.from_checkpoint(small_checkpoint, device='cpu',
                                         backend='channels_last')
    grey = np.full((375, 1242, 3), 128, np.uint8)
    x, geometry = est.preprocess(grey)
    assert x.shape == (1, 3, 172, 576) and x.dtype == torch.float32
    expected = normalize_image(torch.full((1, 3, 1, 1), 128, dtype=torch.uint8))
    torch.testing.assert_close(x, expected.expand_as(x))  # a flat image stays flat
    assert geometry.image_width == 1242
    assert np.all(np.isfinite(est.predict(grey).depth))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
@pytest.mark.parametrize('name', ['fp16', 'bf16', 'fp16+graph', 'eager+graph'])
def test_cuda_backends(calibrated, name):
    model, x, reference = calibrated
    backend = build_backend(name, model, 'cuda', copy_model=True)
    with torch.inference_mode():
        out = backend(x.cuda()).cpu()
        again = backend(x.cuda()).cpu()  # graph replay
    assert torch.equal(out, again)
    assert float((out - reference).abs().max()) <= 0.08


class _FakeCuda:
    """Stand-ins for the torch.cuda calls of CudaGraphForward, recording the device used."""

    def __init__(self):
        self.current = 'cuda:0'
        self.log = []

    def device(self, device):
        fake = self

        class Context:
            def __enter__(self):
                self.previous, fake.current = fake.current, str(device)

            def __exit__(self, *exc):
                fake.current = self.previous
        return Context()

    def stream_class(self, device=None):
        self.log.append(('stream', str(device), self.current))
        return _FakeStream(str(device))

    def current_stream(self, device=None):
        return _FakeStream(str(device))

    def stream(self, stream):
        return nullcontext()

    def graph(self, graph, stream=None, **kwargs):
        self.log.append(('capture', stream.device if stream else None, self.current))
        return nullcontext()


class _FakeStream:
    def __init__(self, device):
        self.device = device

    def wait_stream(self, other):
        pass


class _FakeGraph:
    def __init__(self, log, fake):
        self._log, self._fake = log, fake

    def replay(self):
        self._log.append(('replay', None, self._fake.current))


def test_cuda_graph_capture_and_replay_run_on_the_inputs_device(monkeypatch):
    """The graph is captured and replayed with cuda:N current, on a stream of cuda:N."""
    from eigen_depth_ros.core import backends

    fake = _FakeCuda()
    monkeypatch.setattr(torch.cuda, 'device', fake.device)
    monkeypatch.setattr(torch.cuda, 'Stream', fake.stream_class)
    monkeypatch.setattr(torch.cuda, 'current_stream', fake.current_stream)
    monkeypatch.setattr(torch.cuda, 'stream', fake.stream)
    monkeypatch.setattr(torch.cuda, 'graph', fake.graph)
    monkeypatch.setattr(torch.cuda, 'CUDAGraph', lambda: _FakeGraph(fake.log, fake))
    monkeypatch.setattr(backends, 'device_context', fake.device)
    calls = []

    def forward(x, stage):
        calls.append(fake.current)
        return x * 2

    class OnCuda1(torch.Tensor):  # a CPU tensor that says it lives on cuda:1
        @property
        def device(self):
            return torch.device('cuda', 1)

    graphed = backends.CudaGraphForward(forward, warmup=2)
    out = graphed(torch.ones(1, 3).as_subclass(OnCuda1), 'fine')
    assert torch.equal(out, torch.full((1, 3), 2.0))
    assert calls == ['cuda:1'] * 3                 # two warm-up passes and the capture
    assert ('stream', 'cuda:1', 'cuda:1') in fake.log
    assert ('capture', 'cuda:1', 'cuda:1') in fake.log   # its own stream on cuda:1
    assert ('replay', None, 'cuda:1') in fake.log
    assert fake.current == 'cuda:0'                # the caller's device is current again


def test_device_context_and_tf32_settings():
    from eigen_depth_ros.core.backends import cuda_tf32_state, device_context, set_cuda_tf32

    with device_context('cpu'):
        pass
    before = cuda_tf32_state()
    try:
        set_cuda_tf32(False)
        assert cuda_tf32_state() == {'matmul': False, 'cudnn_conv': False}
        set_cuda_tf32(True)
        assert cuda_tf32_state() == {'matmul': True, 'cudnn_conv': True}
    finally:
        set_cuda_tf32(before['cudnn_conv'])
        if hasattr(torch.backends.cuda.matmul, 'fp32_precision'):
            torch.backends.cuda.matmul.fp32_precision = 'tf32' if before['matmul'] else 'none'


def test_onnx_session_that_fell_back_to_the_cpu_fails_clearly(monkeypatch, tmp_path):
    ort = pytest.importorskip('onnxruntime', reason='onnxruntime is not installed (pip install '
                              '-e .[tools])')
    from eigen_depth_ros.core import backends

    class Session:
        def __init__(self, path, options, providers):
            self.asked = providers

        def get_providers(self):
            return ['CPUExecutionProvider']  # the CUDA provider failed to load

    monkeypatch.setattr(ort, 'get_available_providers',
                        lambda: ['CUDAExecutionProvider', 'CPUExecutionProvider'])
    monkeypatch.setattr(ort, 'InferenceSession', Session)
    with pytest.raises(ValueError, match='CUDA execution provider failed to load'):
        backends.onnx_session(tmp_path / 'model.onnx', 'cuda:0')
    backends.onnx_session(tmp_path / 'model.onnx', 'cpu')  # the CPU asks nothing more
