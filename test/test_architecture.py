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
The one-way import rule of docs/architecture.md, read from the source.

core <- msg <- node <- {bags, tools}; training uses core only; nothing outside tools
imports tools; no module imports itself back through others (no cycles). Every import
counts, also those inside functions.
"""
from __future__ import annotations

import ast
from pathlib import Path
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'eigen_depth_ros'
TRAINING = 'eigen_depth_training'
LAYERS = ('core', 'msg', 'node', 'bags', 'tools')
ALLOWED = {
    'core': {'core'},
    'msg': {'core', 'msg'},
    'node': {'core', 'msg', 'node'},
    'bags': {'core', 'msg', 'node', 'bags', 'training'},
    'tools': {'core', 'msg', 'node', 'bags', 'tools', 'training'},
    'training': {'core', 'training'},
}
"""Which layers each layer may import."""
ROS_PACKAGES = frozenset({'rclpy', 'rosbags', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs',
                          'builtin_interfaces', 'geometry_msgs', 'tf2_msgs', 'rcl_interfaces',
                          'launch', 'launch_ros', 'ament_index_python', 'rosidl_runtime_py'})


def module_name(path: Path) -> str:
    """Dotted module name of a source file (training/ is installed as eigen_depth_training)."""
    parts = list(path.relative_to(ROOT).with_suffix('').parts)
    if parts[0] == 'training':
        parts[0] = TRAINING
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def source_files() -> list[Path]:
    """Every Python file of the two packages."""
    return sorted([*(ROOT / PACKAGE).rglob('*.py'), *(ROOT / 'training').rglob('*.py')])


MODULES = {module_name(path): path for path in source_files()}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                module = '.'.join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.append((node.lineno, module))
            # `from package import module` imports the module
            found += [(node.lineno, f'{module}.{alias.name}') for alias in node.names
                      if f'{module}.{alias.name}' in MODULES]
    return found


def layer(dotted: str) -> str | None:
    """
    Return the layer of one of this project's modules, None for any other module.

    A module of the package outside the five layers is ``'no layer'`` (which no rule
    allows).
    """
    parts = dotted.split('.')
    if parts[0] == TRAINING:
        return 'training'
    if parts[0] != PACKAGE:
        return None
    if len(parts) == 1:
        return 'package'
    return parts[1] if parts[1] in LAYERS else 'no layer'


def project_module(dotted: str) -> str | None:
    """Return the longest project module that ``dotted`` starts with."""
    parts = dotted.split('.')
    for end in range(len(parts), 0, -1):
        candidate = '.'.join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def test_every_module_has_a_layer() -> None:
    for dotted in MODULES:
        assert layer(dotted) in (*ALLOWED, 'package'), dotted
    for name in LAYERS:
        assert f'{PACKAGE}.{name}' in MODULES, name


def test_imports_follow_the_one_way_rule() -> None:
    broken = []
    for dotted, path in MODULES.items():
        here = layer(dotted)
        if here == 'package':
            continue
        for line, target in imported_modules(path):
            there = layer(target)
            if there is None:
                if here in ('core', 'msg', 'training') and target.split('.')[0] in ROS_PACKAGES:
                    broken.append(f'{path.relative_to(ROOT)}:{line}: {here} imports {target}')
                continue
            if there != 'package' and there not in ALLOWED[here]:
                broken.append(f'{path.relative_to(ROOT)}:{line}: {here} imports {target} '
                              f'({there})')
    assert not broken, '\n'.join(broken)


def test_no_import_cycles() -> None:
    graph = {dotted: {project_module(target) for _, target in imported_modules(path)}
             - {None, dotted, PACKAGE}
             for dotted, path in MODULES.items()}
    # a package's __init__ is not a dependency of its modules for this purpose
    graph = {node: {t for t in targets if not dotted_is_parent(t, node)}
             for node, targets in graph.items()}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(' -> '.join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, '\n'.join(cycles)


def dotted_is_parent(parent: str, child: str) -> bool:
    """Whether ``parent`` is a package that contains ``child``."""
    return child.startswith(parent + '.')


@pytest.mark.parametrize('layer_name', ['core', 'msg'])
def test_layer_imports_without_ros(layer_name: str) -> None:
    # Block every ROS package, then import each module of the layer in a fresh interpreter.
    modules = sorted(d for d in MODULES if layer(d) == layer_name)
    script = ('import sys\n'
              f'for name in {sorted(ROS_PACKAGES)!r}:\n'
              '    sys.modules[name] = None\n'
              f'for module in {modules!r}:\n'
              '    __import__(module)\n')
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_package_holds_only_its_layers() -> None:
    # eigen_depth_ros.core.* is the one public path of the library: no top-level modules
    # beside the five layers (the old aliases eigen_depth_ros.model, .loss, .metrics and
    # .checkpoint are gone)
    top = sorted(p.name for p in (ROOT / PACKAGE).iterdir()
                 if p.suffix == '.py' or (p / '__init__.py').is_file())
    assert top == sorted(['__init__.py', *LAYERS])
    for old in ('model', 'loss', 'metrics', 'checkpoint'):
        with pytest.raises(ModuleNotFoundError):
            __import__(f'{PACKAGE}.{old}')
