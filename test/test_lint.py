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
The ament linter tests: flake8 (99 columns) and pep257 as ament_python packages run them.

One test per folder, so a failure names whose files need work. ament_flake8 and
ament_pep257 come from PyPI (ros-kilted-ament-flake8 / -pep257, with flake8, pydocstyle and
the flake8 plugins ament expects); ament_copyright and ament_xmllint are not on PyPI and
run only in an apt ROS 2 install.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ['eigen_depth_ros', 'training', 'test', 'launch']


@pytest.fixture
def outside_the_tree(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """ament_flake8 walks the working directory; keep it out of .venv."""
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize('folder', FOLDERS)
def test_flake8(folder: str, outside_the_tree: None,
                capsys: pytest.CaptureFixture) -> None:
    main = pytest.importorskip('ament_flake8.main', reason='ament_flake8 or flake8 missing')
    rc, errors = main.main_with_errors(argv=['--linelength', '99', str(ROOT / folder)])
    output = capsys.readouterr().out
    assert rc == 0, f'{len(errors)} flake8 error(s) in {folder}/:\n' + '\n'.join(errors) + \
        '\n' + output[-2000:]


@pytest.mark.parametrize('folder', FOLDERS)
def test_pep257(folder: str, capsys: pytest.CaptureFixture) -> None:
    main = pytest.importorskip('ament_pep257.main', reason='ament_pep257 or pydocstyle '
                               'missing')
    rc = main.main(argv=[str(ROOT / folder)])
    output = capsys.readouterr()
    assert rc == 0, f'pep257 errors in {folder}/:\n{output.out}{output.err}'


def test_copyright() -> None:
    main = pytest.importorskip('ament_copyright.main', reason='ament_copyright is not on '
                               'PyPI: runs in an apt ROS 2 install')
    rc = main.main(argv=[str(ROOT / folder) for folder in FOLDERS])
    assert rc == 0, 'copyright/license headers missing (see the output above)'


def test_xmllint() -> None:
    main = pytest.importorskip('ament_xmllint.main', reason='ament_xmllint is not on PyPI: '
                               'runs in an apt ROS 2 install')
    rc = main.main(argv=[str(ROOT / 'package.xml'), str(ROOT / 'config')])
    assert rc == 0, 'xmllint errors (see the output above)'
