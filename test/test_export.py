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

"""eigen-depth export: ONNX and TorchScript round trips, dynamic batch, the self-check."""
from eigen_depth_ros.core.backends import ONNX_OPSET, onnx_session
from eigen_depth_ros.core.checkpoint import load_checkpoint
from eigen_depth_ros.core.inference import DepthEstimator
from eigen_depth_ros.tools import export
import numpy as np
import onnx
import pytest
import torch


def _inputs(batch: int) -> torch.Tensor:
    return torch.randn(batch, 3, 172, 576, generator=torch.Generator().manual_seed(batch))


def test_onnx_round_trip(small_checkpoint, tmp_path, capsys):
    out = tmp_path / 'model.onnx'
    assert export.main(['--checkpoint', str(small_checkpoint), '--format', 'onnx',
                        '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'max abs diff in log depth' in printed and 'ok' in printed
    graph = onnx.load(str(out)).graph
    assert [i.name for i in graph.input] == ['image']
    assert [o.name for o in graph.output] == ['log_depth']
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == 'batch'
    model, _ = load_checkpoint(small_checkpoint)
    x = _inputs(3)  # a batch size the export never saw
    got = onnx_session(out).run(None, {'image': x.numpy()})[0]
    with torch.inference_mode():
        expected = model(x).numpy()
    assert got.shape == (3, 1, 27, 142)
    assert np.max(np.abs(got - expected)) <= 1e-4
    # The node-side path: the estimator running the exported file.
    rgb = np.random.default_rng(1).integers(0, 255, (375, 1242, 3), dtype=np.uint8)
    onnx_est = DepthEstimator.from_checkpoint(small_checkpoint, device='cpu', backend='onnx',
                                              onnx_path=out)
    eager_est = DepthEstimator.from_checkpoint(small_checkpoint, device='cpu')
    assert np.allclose(onnx_est.predict_log(rgb)[0], eager_est.predict_log(rgb)[0],
                       atol=1e-4)


def test_onnx_static_batch_and_opset(small_checkpoint, tmp_path):
    out = tmp_path / 'static.onnx'
    assert export.main(['--checkpoint', str(small_checkpoint), '--format', 'onnx',
                        '--out', str(out), '--static-batch']) == 0
    proto = onnx.load(str(out))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    assert proto.opset_import[0].version == ONNX_OPSET


def test_torchscript_coarse_round_trip(small_checkpoint, tmp_path):
    out = tmp_path / 'coarse.ts'
    assert export.main(['--checkpoint', str(small_checkpoint), '--format', 'torchscript',
                        '--out', str(out), '--stage', 'coarse']) == 0
    model, _ = load_checkpoint(small_checkpoint)
    module = torch.jit.load(str(out))
    x = _inputs(2)
    with torch.inference_mode():
        assert torch.allclose(module(x), model(x, stage='coarse'), atol=1e-5)
        assert not torch.allclose(module(x), model(x, stage='fine'), atol=1e-3)


def test_check_failure_exits_nonzero_and_removes_file(small_checkpoint, tmp_path,
                                                      monkeypatch, capsys):
    real = export.run_exported

    def corrupted(path, fmt, x):
        return real(path, fmt, x) + 2e-3  # an exporter that got one op slightly wrong

    monkeypatch.setattr(export, 'run_exported', corrupted)
    out = tmp_path / 'bad.onnx'
    code = export.main(['--checkpoint', str(small_checkpoint), '--format', 'onnx',
                        '--out', str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert 'max abs diff in log depth 0.002' in err and 'tolerance 0.0001' in err
    assert not out.exists()


def test_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / 'bad.pt'
    bad.write_bytes(b'not a checkpoint')
    assert export.main(['--checkpoint', str(bad), '--format', 'onnx',
                        '--out', str(tmp_path / 'x.onnx')]) == 2
    assert 'bad.pt' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export.main(['--checkpoint', str(bad), '--format', 'tflite', '--out', 'x'])
