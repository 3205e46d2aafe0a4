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
Tests of launch/depth.launch.py, config/depth.yaml and the colcon install tree.

Here (pip route) ``launch`` and ``launch_ros`` are not installed, so the launch file is
checked three ways: its syntax tree against setup.py, package.xml, config/ and the node's
parameter table; its argument logic run against stand-in ``launch`` modules; and a real
``colcon build`` whose install tree is inspected and whose ``depth_node`` is started. The
launch file itself runs for real only where launch_ros is importable (apt ROS 2).
"""
from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time
from types import ModuleType, SimpleNamespace
from typing import Any
import xml.etree.ElementTree as ElementTree

from eigen_depth_ros.node import ros_env as dds_env
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
LAUNCH_FILE = ROOT / 'launch' / 'depth.launch.py'
PARAMS_FILE = ROOT / 'config' / 'depth.yaml'
REQUIRED_ARGUMENTS = {'params_file', 'checkpoint', 'device', 'backend', 'image_topic',
                      'camera_info_topic', 'log_level'}


# ------------------------------------------------------------------------ static checks


def module_constants(tree: ast.Module) -> dict[str, Any]:
    """Module-level ``NAME = <literal>`` assignments."""
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return constants


def evaluate(node: ast.AST, constants: dict[str, Any]) -> Any:
    """Value of a literal, a module constant or an f-string made of those."""
    if isinstance(node, ast.Name):
        return constants[node.id]
    if isinstance(node, ast.JoinedStr):
        return ''.join(str(evaluate(v.value if isinstance(v, ast.FormattedValue) else v,
                                    constants)) for v in node.values)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [evaluate(e, constants) for e in node.elts]
    return ast.literal_eval(node)


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Every call of ``name(...)`` in ``tree``."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and
            getattr(n.func, 'id', getattr(n.func, 'attr', None)) == name]


def keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


@pytest.fixture(scope='module')
def launch_tree() -> tuple[ast.Module, dict[str, Any]]:
    tree = ast.parse(LAUNCH_FILE.read_text(), str(LAUNCH_FILE))
    return tree, module_constants(tree)


@pytest.fixture(scope='module')
def setup_py() -> dict[str, Any]:
    """Package name and console scripts of setup.py."""
    tree = ast.parse((ROOT / 'setup.py').read_text())
    constants = module_constants(tree)
    setup = calls(tree, 'setup')[0]
    entry_points = keyword(setup, 'entry_points')
    scripts = {}
    for key, value in zip(entry_points.keys, entry_points.values):
        if evaluate(key, constants) == 'console_scripts':
            for line in evaluate(value, constants):
                name, target = (part.strip() for part in line.split('='))
                scripts[name] = target
    return {'name': evaluate(keyword(setup, 'name'), constants), 'scripts': scripts}


def test_launch_arguments_are_declared_with_descriptions(launch_tree: tuple) -> None:
    tree, constants = launch_tree
    declared = {}
    for call in calls(tree, 'DeclareLaunchArgument'):
        description = keyword(call, 'description')
        declared[evaluate(call.args[0], constants)] = description
    assert REQUIRED_ARGUMENTS <= set(declared)
    for name, description in declared.items():
        assert description is not None, f'launch argument {name} has no description'
        assert len(str(evaluate(description, constants))) > 10, name


def test_node_matches_setup_package_and_config(launch_tree: tuple, setup_py: dict) -> None:
    tree, constants = launch_tree
    (node,) = calls(tree, 'Node')
    package = evaluate(keyword(node, 'package'), constants)
    name = evaluate(keyword(node, 'name'), constants)
    assert package == setup_py['name']
    assert ElementTree.parse(ROOT / 'package.xml').findtext('name') == package
    assert setup_py['scripts'][constants['EXECUTABLE']] == 'eigen_depth_ros.node.depth_node:main'
    assert setup_py['scripts'][constants['MANAGED_EXECUTABLE']] == \
        'eigen_depth_ros.node.lifecycle:main'
    from eigen_depth_ros.node.lifecycle import AUTOSTART_FLAG
    assert constants['AUTOSTART_FLAG'] == AUTOSTART_FLAG
    params = yaml.safe_load(PARAMS_FILE.read_text())
    assert list(params) == [name] and 'ros__parameters' in params[name]
    from eigen_depth_ros.node.parameters import NODE_NAME
    assert name == NODE_NAME
    remapped = [evaluate(pair.elts[0], constants)
                for pair in keyword(node, 'remappings').elts]
    assert remapped == ['image', 'camera_info']
    for file_name in (constants['PARAMS_FILE'], constants['FASTDDS_PROFILE']):
        assert (ROOT / 'config' / file_name).is_file()


def test_yaml_holds_every_parameter_with_its_default_type() -> None:
    pytest.importorskip('rclpy')
    from eigen_depth_ros.node.parameters import PARAMETERS
    values = yaml.safe_load(PARAMS_FILE.read_text())['eigen_depth']['ros__parameters']
    assert set(values) == {spec.name for spec in PARAMETERS}
    for spec in PARAMETERS:
        assert type(values[spec.name]) is type(spec.default), spec.name
        assert values[spec.name] == spec.default, spec.name
    docs = (ROOT / 'docs' / 'node.md').read_text()
    for spec in PARAMETERS:
        assert f'`{spec.name}`' in docs, f'docs/node.md does not describe {spec.name}'


def test_docs_table_matches_the_parameter_table() -> None:
    """docs/node.md's parameter rows give each parameter's type, default and when."""
    pytest.importorskip('rclpy')
    from eigen_depth_ros.node.parameters import PARAMETERS
    rows = {}
    for line in (ROOT / 'docs' / 'node.md').read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        if line.startswith('| `') and len(cells) == 6:
            rows[cells[0].strip('`')] = cells
    types = {bool: 'bool', int: 'int', float: 'double', str: 'string'}
    for spec in PARAMETERS:
        name, kind, default, _, when, _ = rows[spec.name]
        assert kind == types[type(spec.default)], name
        shown = (f"'{spec.default}'" if isinstance(spec.default, str)
                 else str(spec.default).lower() if isinstance(spec.default, bool)
                 else str(spec.default))
        assert default == f'`{shown}`', name
        assert when == ('start-up' if spec.read_only else 'runtime'), name


def test_launch_overrides_are_node_parameters(launch_tree: tuple) -> None:
    """Each override argument names a node parameter and defaults to empty (keep the file)."""
    pytest.importorskip('rclpy')
    from eigen_depth_ros.node.parameters import PARAMETERS
    tree, constants = launch_tree
    defaults = {evaluate(call.args[0], constants): keyword(call, 'default_value')
                for call in calls(tree, 'DeclareLaunchArgument')}
    assert set(constants['OVERRIDES']) <= {spec.name for spec in PARAMETERS}
    for name in constants['OVERRIDES']:
        assert evaluate(defaults[name], constants) == '', name


# ------------------------------------------------------------------------ argument logic


def stub_launch_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins for launch, launch_ros and ament_index_python that record what is built."""
    def action(kind: str) -> type:
        class Action(SimpleNamespace):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(kind=kind, args=args, **kwargs)
        return Action

    class LaunchConfiguration:
        def __init__(self, name: str) -> None:
            self.name = name

        def perform(self, context: Any) -> str:
            return context.launch_configurations[self.name]

    modules = {
        'launch': {'LaunchContext': object, 'LaunchDescription': list},
        'launch.actions': {'DeclareLaunchArgument': action('declare'),
                           'OpaqueFunction': action('opaque'),
                           'SetEnvironmentVariable': action('setenv')},
        'launch.substitutions': {'LaunchConfiguration': LaunchConfiguration},
        'launch_ros': {}, 'launch_ros.actions': {'Node': action('node')},
        'ament_index_python': {},
        # the source tree has the share/ layout (config/...), so the profile is checked
        'ament_index_python.packages': {
            'get_package_share_directory': lambda package: str(ROOT)},
    }
    for name, attributes in modules.items():
        module = ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)


def run_launch_file(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str],
                    **arguments: str) -> list[Any]:
    """Evaluate the launch file with stand-ins; return the actions its OpaqueFunction makes."""
    stub_launch_modules(monkeypatch)
    spec = importlib.util.spec_from_file_location('depth_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    defaults = {a.args[0]: a.default_value for a in description if a.kind == 'declare'}
    defaults.update(arguments)
    (opaque,) = [a for a in description if a.kind == 'opaque']
    context = SimpleNamespace(launch_configurations=defaults, environment=environment)
    return opaque.function(context)


def test_empty_arguments_keep_the_yaml_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dds_env, 'fastdds_major', lambda env=None: 3)  # Kilted
    actions = run_launch_file(monkeypatch, {})
    node = actions[-1]
    assert node.parameters == [f'{ROOT}/config/depth.yaml']
    assert node.remappings == [('image', 'image'), ('camera_info', 'camera_info')]
    assert node.ros_arguments == ['--log-level', 'info']
    assert node.executable == 'depth_node' and node.name == 'eigen_depth'
    assert node.namespace == '' and node.arguments == []
    setenv = [a for a in actions if a.kind == 'setenv']
    assert [a.args for a in setenv] == [(
        'FASTDDS_DEFAULT_PROFILES_FILE', f'{ROOT}/config/fastdds_shm.xml')]
    # blank values (as `backend:=` gives) never reach the node either
    node = run_launch_file(monkeypatch, {}, checkpoint='/m.pt', device=' ', backend='')[-1]
    assert node.parameters == [f'{ROOT}/config/depth.yaml', {'checkpoint': '/m.pt'}]


def test_given_arguments_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(dds_env, 'fastdds_major', lambda env=None: 3)  # Kilted
    mine = shutil.copy(ROOT / 'config' / 'fastdds_shm.xml', tmp_path / 'mine.xml')
    actions = run_launch_file(monkeypatch, {'FASTDDS_DEFAULT_PROFILES_FILE': str(mine)},
                              checkpoint='/m.pt', device='cuda:1', backend='fp16+graph',
                              params_file='/p.yaml', image_topic='/cam/image_raw',
                              camera_info_topic='/cam/info', log_level='debug')
    (node,) = actions  # the user's own Fast DDS profile is left alone
    assert node.parameters == ['/p.yaml', {'checkpoint': '/m.pt', 'device': 'cuda:1',
                                           'backend': 'fp16+graph'}]
    assert node.remappings == [('image', '/cam/image_raw'), ('camera_info', '/cam/info')]
    assert node.ros_arguments == ['--log-level', 'debug']
    (node,) = run_launch_file(monkeypatch, {}, fastdds_profile='')
    assert node.kind == 'node'


def test_jazzy_gets_the_variable_fast_dds_2_reads(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    """Fast DDS 2.14 (Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE only: the node gets that."""
    monkeypatch.setattr(dds_env, 'fastdds_major', lambda env=None: 2)
    actions = run_launch_file(monkeypatch, {})
    assert [a.args for a in actions if a.kind == 'setenv'] == [(
        'FASTRTPS_DEFAULT_PROFILES_FILE', f'{ROOT}/config/fastdds_shm.xml')]
    # a profile exported under Kilted's name (ignored by Fast DDS 2) is passed on under
    # the name Jazzy reads, not dropped in silence
    mine = str(shutil.copy(ROOT / 'config' / 'fastdds_shm.xml', tmp_path / 'mine.xml'))
    actions = run_launch_file(monkeypatch, {'FASTDDS_DEFAULT_PROFILES_FILE': mine})
    assert [a.args for a in actions if a.kind == 'setenv'] == [
        ('FASTRTPS_DEFAULT_PROFILES_FILE', mine)]
    actions = run_launch_file(monkeypatch, {'FASTRTPS_DEFAULT_PROFILES_FILE': mine})
    assert [a.kind for a in actions] == ['node']


@pytest.mark.parametrize('major', [2, 3])
def test_a_bad_profile_stops_the_launch_naming_it(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path, ros_env: dict,
                                                  major: int) -> None:
    """A missing or invalid profile: the launch fails with the file and Fast DDS's words."""
    installed = dds_env.fastdds_major()
    monkeypatch.setattr(dds_env, 'fastdds_major', lambda env=None: major)
    ros_env = {k: v for k, v in ros_env.items() if not k.endswith('_DEFAULT_PROFILES_FILE')}
    variable = ('FASTRTPS_DEFAULT_PROFILES_FILE' if major == 2
                else 'FASTDDS_DEFAULT_PROFILES_FILE')
    missing = tmp_path / 'missing.xml'
    with pytest.raises(RuntimeError) as error:
        run_launch_file(monkeypatch, {**ros_env, variable: str(missing)})
    assert f'Fast DDS profile {missing} ({variable}): file not found' in str(error.value)
    broken = tmp_path / 'broken.xml'
    broken.write_text((ROOT / 'config' / 'fastdds_shm.xml').read_text().replace(
        '<transport_id>shm_big</transport_id>\n      <type>', '<transport_id>shm</transport_id>'
        '\n      <type>'))
    with pytest.raises(RuntimeError) as error:
        run_launch_file(monkeypatch, ros_env, fastdds_profile=str(broken))
    message = str(error.value)
    assert f'Fast DDS profile {broken} (launch argument fastdds_profile)' in message
    assert "transport_id 'shm_big', which no <transport_descriptor> declares" in message
    if major == installed:  # the Fast DDS here parsed it (the other ignores the variable)
        assert 'Fast DDS said: [XMLPARSER Error] Transport Node not found' in message, message


def test_one_node_per_camera_each_in_its_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """cameras:='front,rear' (under namespace:=robot): two nodes, each with the YAML's values."""
    monkeypatch.setattr(dds_env, 'fastdds_major', lambda env=None: 3)
    block = yaml.safe_load(PARAMS_FILE.read_text())['eigen_depth']['ros__parameters']
    nodes = [a for a in run_launch_file(monkeypatch, {}, cameras='front, rear',
                                        namespace='/robot', checkpoint='/m.pt')
             if a.kind == 'node']
    assert [n.namespace for n in nodes] == ['robot/front', 'robot/rear']
    for node in nodes:
        # rcl applies the file's `eigen_depth:` block to /eigen_depth only: the block again
        assert node.parameters == [f'{ROOT}/config/depth.yaml', block, {'checkpoint': '/m.pt'}]
        assert node.remappings == [('image', 'image'), ('camera_info', 'camera_info')]
    (node,) = [a for a in run_launch_file(monkeypatch, {}, namespace='/front')
               if a.kind == 'node']
    assert node.namespace == '/front' and node.parameters == [f'{ROOT}/config/depth.yaml',
                                                              block]


def test_use_lifecycle_runs_the_managed_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dds_env, 'fastdds_major', lambda env=None: 3)
    node = run_launch_file(monkeypatch, {}, use_lifecycle='true')[-1]
    assert node.executable == 'depth_lifecycle_node' and node.arguments == ['--autostart']
    node = run_launch_file(monkeypatch, {}, use_lifecycle='true', autostart='false')[-1]
    assert node.executable == 'depth_lifecycle_node' and node.arguments == []
    node = run_launch_file(monkeypatch, {}, autostart='true')[-1]   # unmanaged: ignored
    assert node.executable == 'depth_node' and node.arguments == []


# ------------------------------------------------------------------------ colcon install


@pytest.fixture(scope='module')
def install_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``colcon build --merge-install`` of a copy of the package; returns install/."""
    colcon = Path(sys.executable).parent / 'colcon'
    if not colcon.exists():
        colcon = shutil.which('colcon')
        if colcon is None:
            pytest.skip('colcon is not installed')
    base = tmp_path_factory.mktemp('colcon')
    source = base / 'src' / 'eigen_depth_ros'
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info')
    for entry in ('package.xml', 'setup.py', 'setup.cfg', 'resource', 'eigen_depth_ros',
                  'training', 'launch', 'config'):
        path = ROOT / entry
        if path.is_dir():
            shutil.copytree(path, source / entry, ignore=ignore)
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / entry)
    result = subprocess.run(
        [str(colcon), '--log-base', 'log', 'build', '--merge-install', '--base-paths', 'src',
         '--build-base', 'build', '--install-base', 'install'],
        cwd=base, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return base / 'install'


def test_install_tree_has_the_ament_layout(install_tree: Path) -> None:
    for relative in ('lib/eigen_depth_ros/depth_node', 'lib/eigen_depth_ros/depth_lifecycle_node',
                     'share/eigen_depth_ros/launch/depth.launch.py',
                     'share/eigen_depth_ros/config/depth.yaml',
                     'share/eigen_depth_ros/config/fastdds_shm.xml',
                     'share/eigen_depth_ros/package.xml',
                     'share/ament_index/resource_index/packages/eigen_depth_ros'):
        assert (install_tree / relative).is_file(), relative
    assert os.access(install_tree / 'lib/eigen_depth_ros/depth_node', os.X_OK)


def installed_env(install_tree: Path) -> dict[str, str]:
    """Environment that prefers the install tree (as sourcing its setup.bash would)."""
    env = dict(os.environ)
    site = next((install_tree / 'lib').glob('python3*/site-packages'))
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(site), env.get('PYTHONPATH')]))
    env['AMENT_PREFIX_PATH'] = os.pathsep.join(
        filter(None, [str(install_tree), env.get('AMENT_PREFIX_PATH')]))
    return env


def test_installed_depth_node_reports_a_missing_checkpoint(install_tree: Path,
                                                           tmp_path: Path) -> None:
    missing = tmp_path / 'missing.pt'
    result = subprocess.run(
        [str(install_tree / 'lib/eigen_depth_ros/depth_node'), '--ros-args',
         '-p', f'checkpoint:={missing}'],
        env=installed_env(install_tree), capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f'cannot start: {missing}: checkpoint file not found' in output
    assert 'Traceback' not in output


def test_launch_file_runs_for_real(install_tree: Path, small_checkpoint: Path) -> None:
    pytest.importorskip('launch_ros', reason='launch_ros is not installed (pip route): the '
                        'launch file runs for real only in an apt ROS 2 install')
    runner = (
        'import sys\n'
        'from launch import LaunchService\n'
        'from launch.actions import IncludeLaunchDescription\n'
        'from launch.launch_description_sources import PythonLaunchDescriptionSource\n'
        'service = LaunchService()\n'
        'service.include_launch_description(IncludeLaunchDescription(\n'
        '    PythonLaunchDescriptionSource(sys.argv[1]),\n'
        '    launch_arguments={"checkpoint": sys.argv[2],\n'
        '                      "image_topic": "/launch_test/image"}.items()))\n'
        'sys.exit(service.run())\n')
    launch_file = install_tree / 'share/eigen_depth_ros/launch/depth.launch.py'
    proc = subprocess.Popen([sys.executable, '-c', runner, str(launch_file),
                             str(small_checkpoint)], env=installed_env(install_tree),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    import rclpy
    from sensor_msgs.msg import Image
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('launch_test_probe', context=context)
        publisher = node.create_publisher(Image, '/launch_test/image', 1)
        deadline = time.monotonic() + 60
        while publisher.get_subscription_count() == 0:  # the remapped node subscribes
            assert time.monotonic() < deadline, 'launched node never subscribed'
            assert proc.poll() is None, proc.communicate()[0]
            rclpy.spin_once(node, timeout_sec=0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output
