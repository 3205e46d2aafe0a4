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
Every import of the package is declared where an installer reads it.

The apt route reads package.xml (rosdep keys: ROS packages by their name, Python libraries
by their ``python3-*`` key); the tools' Python libraries rosdep has no key for are the
``tools`` extra of setup.py (``pip install -e .[tools]``). This test reads every import of
``eigen_depth_ros/``, ``training/`` and ``launch/`` (function-level ones included) and finds
each outside the standard library in one of the two.
"""
from __future__ import annotations

import ast
from importlib.metadata import packages_distributions
from pathlib import Path
import re
import sys
import xml.etree.ElementTree as ElementTree

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ('eigen_depth_ros', 'training', 'launch')
OWN = {'eigen_depth_ros', 'eigen_depth_training', '__future__'}
ROSDEP_PYTHON = {'numpy': 'python3-numpy', 'cv2': 'python3-opencv', 'torch': 'python3-torch',
                 'yaml': 'python3-yaml'}
"""Python libraries the node needs, by import name, and their rosdep keys."""


def imported_modules() -> dict[str, set[str]]:
    """Return each top-level module imported outside the standard library, and where."""
    found: dict[str, set[str]] = {}
    for folder in SOURCES:
        for path in (ROOT / folder).rglob('*.py'):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split('.')[0]
                    if top not in sys.stdlib_module_names and top not in OWN:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def package_xml_keys() -> set[str]:
    """Return the run-time dependency keys of package.xml."""
    document = ElementTree.parse(ROOT / 'package.xml').getroot()
    return {element.text.strip() for tag in ('depend', 'exec_depend')
            for element in document.iter(tag)}


def tools_extra() -> set[str]:
    """Return the distributions of setup.py's ``tools`` extra (normalised names)."""
    tree = ast.parse((ROOT / 'setup.py').read_text())
    constants = {node.targets[0].id: node.value for node in tree.body
                 if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, 'id', None) == 'setup')
    extras = next(k.value for k in call.keywords if k.arg == 'extras_require')
    value = dict(zip((ast.literal_eval(k) for k in extras.keys), extras.values))['tools']
    names = ast.literal_eval(constants[value.id] if isinstance(value, ast.Name) else value)
    return {normalise(name) for name in names}


def normalise(distribution: str) -> str:
    """Return a distribution name as pip compares them (PEP 503)."""
    return re.sub(r'[-_.]+', '-', distribution).lower()


def test_the_scan_finds_the_imports_it_must() -> None:
    """The scan sees module-level, function-level and launch-file imports."""
    found = imported_modules()
    assert 'eigen_depth_ros/node/depth_node.py' in found['rclpy']
    assert 'launch/depth.launch.py' in found['launch_ros']
    assert any(path.startswith('eigen_depth_ros/tools/') for path in found['onnxruntime'])


def test_every_import_is_declared() -> None:
    keys, extra = package_xml_keys(), tools_extra()
    distributions = packages_distributions()
    missing = []
    for module, paths in sorted(imported_modules().items()):
        if module in keys or ROSDEP_PYTHON.get(module) in keys:
            continue      # a ROS package, or a rosdep key of package.xml
        installed = {normalise(d) for d in distributions.get(module, [])}
        if not installed:
            pytest.fail(f'{module} (imported by {sorted(paths)[0]}) is not installed here, '
                        'so its distribution is unknown')
        if not installed & extra:
            missing.append(f'{module} ({", ".join(sorted(installed))}, imported by '
                           f'{sorted(paths)[0]})')
    assert not missing, ("imported but declared neither in package.xml nor in setup.py's "
                         'tools extra: ' + '; '.join(missing))


def test_the_extra_holds_only_what_is_imported_or_needed_by_an_import() -> None:
    """No stale entries: each is imported, or needed by torch (tensorboard, onnx), or mcap."""
    distributions = packages_distributions()
    imported = {normalise(d) for module in imported_modules()
                for d in distributions.get(module, [])}
    needed_by_imports = {'tensorboard', 'onnx', 'zstandard'}   # torch.utils, torch.onnx, mcap
    assert tools_extra() - imported <= needed_by_imports
