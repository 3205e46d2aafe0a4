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
Security: no code runs from data files, paths stay paths, the node listens on nothing.

* Source scan (``ast``) of eigen_depth_ros/, training/ and launch/: no ``eval``/``exec``,
  no shell (``os.system``, ``os.popen``, ``shell=True``), subprocesses only with argument
  lists, no unpickling (``pickle``, ``marshal``, ``yaml.load``, ``np.load(allow_pickle=
  True)``), every ``torch.load`` with ``weights_only=True``.
* Data files: a checkpoint pickle that would create a marker file (also given to the node
  process), and bags whose embedded message definitions carry Python-looking names and
  constants (rosbags turns definitions into generated code): the marker never appears.
* Paths with shell metacharacters (``;``, ``$(...)``, backticks, quotes, spaces) given to
  the node's ``checkpoint`` parameter and to the command lines are opened as files, never
  run.
* A running node owns no TCP socket, listening or not, and no UDP socket beyond those a bare
  rclpy participant opens in the same environment (the rmw's; see docs/reliability.md).
"""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path
import subprocess
import sys
from typing import Any

from eigen_depth_ros.bags import bag_eval, synth_bag
from eigen_depth_ros.core.checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint
from eigen_depth_ros.node.harness import (camera_image, node_command, NodeProcess, output_qos,
                                          RosSide)
from eigen_depth_ros.tools import export
import numpy as np
import pytest
from support import publish_until, write_small_checkpoint
import torch

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for folder in ('eigen_depth_ros', 'training', 'launch')
                 for p in (ROOT / folder).rglob('*.py'))
# Calls that run code or a shell, or unpickle, wherever they appear.
FORBIDDEN = {'eval', 'exec', 'compile', '__import__', 'os.system', 'os.popen', 'os.execv',
             'os.execvp', 'os.execl', 'os.spawnv', 'os.spawnl', 'pickle.load', 'pickle.loads',
             'pickle.Unpickler', 'marshal.load', 'marshal.loads', 'shelve.open',
             'yaml.load', 'yaml.unsafe_load', 'yaml.full_load', 'dill.load', 'dill.loads',
             'subprocess.getoutput', 'subprocess.getstatusoutput',
             'asyncio.create_subprocess_shell'}
SUBPROCESS = {'subprocess.Popen', 'subprocess.run', 'subprocess.call', 'subprocess.check_call',
              'subprocess.check_output'}
# Allowed exceptions: (file, call) -> why.
ALLOWED = {('eigen_depth_ros/tools/export.py', 'torch.jit.load'):
           'loads the TorchScript file the command has just written, to check it'}
# Shell syntax that runs `touch pwned` whether a shell gets it bare, in double quotes or in
# single quotes (its quotes are balanced, so no shell stops at a syntax error first).
HOSTILE_NAME = 'we ird;touch pwned;$(touch pwned)`touch pwned`\';touch pwned;\'"q"'


def dotted(node: ast.AST) -> str:
    """Return ``a.b.c`` for a Name/Attribute chain, '' for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return '.'.join(reversed(parts))
    return ''


def import_aliases(tree: ast.AST) -> dict[str, str]:
    """
    Map each name the imports of ``tree`` bind to the dotted name it stands for.

    ``import pickle as p`` binds ``p`` -> ``pickle``; ``from subprocess import run`` binds
    ``run`` -> ``subprocess.run``; ``import os.path`` binds ``os`` -> ``os``.
    """
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    first = alias.name.split('.')[0]
                    aliases[first] = first
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f'{node.module}.{alias.name}'
    return aliases


def resolved(name: str, aliases: dict[str, str]) -> str:
    """Return the dotted ``name`` with its first part replaced by what the imports bound."""
    first, dot, rest = name.partition('.')
    return aliases.get(first, first) + dot + rest if name else name


def keyword(call: ast.Call, name: str) -> ast.AST | None:
    """Return the value of keyword argument ``name`` of ``call``, or None."""
    return next((k.value for k in call.keywords if k.arg == name), None)


def is_true(node: ast.AST | None) -> bool:
    """Whether ``node`` is the literal True."""
    return isinstance(node, ast.Constant) and node.value is True


def argument_list_source(function: ast.AST | None, arg: ast.AST) -> str | None:
    """Say why the first argument of a subprocess call is a list, or None if unsure."""
    if isinstance(arg, (ast.List, ast.Tuple)):
        return 'literal list'
    if isinstance(arg, ast.BinOp) and isinstance(arg.left, (ast.List, ast.Name)):
        return 'list concatenation'
    if isinstance(arg, ast.Name) and function is not None:
        for node in ast.walk(function):
            if isinstance(node, ast.arg) and node.arg == arg.id and node.annotation is not None \
                    and 'list' in ast.unparse(node.annotation):
                return f'parameter {arg.id}: {ast.unparse(node.annotation)}'
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == arg.id for t in node.targets):
                if isinstance(node.value, (ast.List, ast.BinOp)) or (
                        isinstance(node.value, ast.Call)
                        and dotted(node.value.func).endswith('command')):
                    return f'{arg.id} = {ast.unparse(node.value)[:40]}'
    return None


def scan(path: Path) -> tuple[list[str], list[str]]:
    """Return (problems, subprocess call sites) of one source file."""
    rel = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    aliases = import_aliases(tree)
    problems, sites = [], []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = resolved(dotted(call.func), aliases)   # what the call is, however imported
        where = f'{rel}:{call.lineno}'
        if (rel, name) in ALLOWED:
            continue
        if name in FORBIDDEN or name in ('torch.jit.load', 'torch.package.PackageImporter'):
            problems.append(f'{where}: {name}(...)')
        if name == 'torch.load' and not is_true(keyword(call, 'weights_only')):
            problems.append(f'{where}: torch.load without weights_only=True')
        if name in ('np.load', 'numpy.load') and is_true(keyword(call, 'allow_pickle')):
            problems.append(f'{where}: np.load(allow_pickle=True)')
        if keyword(call, 'shell') is not None and not (
                isinstance(keyword(call, 'shell'), ast.Constant)
                and keyword(call, 'shell').value is False):
            problems.append(f'{where}: shell= in {name or "a call"}')
        if name in SUBPROCESS:
            function = call
            while function in parents and not isinstance(
                    function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                function = parents[function]
            why = argument_list_source(function, call.args[0]) if call.args else None
            if why is None:
                problems.append(f'{where}: {name} with an argument that is not a list')
            sites.append(f'{where}: {name}({why})')
    return problems, sites


def test_source_runs_no_shell_and_unpickles_nothing() -> None:
    problems, sites = [], []
    for path in SOURCES:
        found, called = scan(path)
        problems += found
        sites += called
    assert len(SOURCES) > 20
    assert not problems, '\n'.join(problems)
    print('\nsubprocess call sites (argument lists, no shell):\n  ' + '\n  '.join(sites))


def scan_text(tmp_path: Path, text: str) -> list[str]:
    """Scan ``text`` as a source file of a tree rooted at ``tmp_path``; return the problems."""
    bad = tmp_path / 'bad.py'
    bad.write_text(text)
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        problems, _ = scan(bad)
    finally:
        ROOT = saved
    return problems


def test_scanner_catches_what_it_should(tmp_path: Path) -> None:
    problems = scan_text(tmp_path, 'import os, pickle, subprocess, torch\n'
                                   'def f(path: str, cmd):\n'
                                   '    os.system("ls " + path)\n'
                                   '    subprocess.run(f"ls {path}", shell=True)\n'
                                   '    subprocess.Popen(cmd)\n'
                                   '    torch.load(path)\n'
                                   '    pickle.loads(b"")\n'
                                   '    eval(path)\n')
    assert [p.split(': ', 1)[1] for p in problems] == [
        'os.system(...)', 'shell= in subprocess.run', 'subprocess.run with an argument that '
        'is not a list', 'subprocess.Popen with an argument that is not a list',
        'torch.load without weights_only=True', 'pickle.loads(...)', 'eval(...)']


def test_scanner_sees_through_import_aliases(tmp_path: Path) -> None:
    # the same calls, imported under other names: each is found under its real name
    problems = scan_text(tmp_path, 'import pickle as p\n'
                                   'import subprocess as sp\n'
                                   'from subprocess import run, check_output as co\n'
                                   'from os import system\n'
                                   'from torch import load\n'
                                   'import numpy\n'
                                   'from yaml import load as yload\n'
                                   'def f(path: str):\n'
                                   '    p.load(open(path, "rb"))\n'
                                   '    run(path)\n'
                                   '    co(path)\n'
                                   '    sp.Popen(path)\n'
                                   '    system(path)\n'
                                   '    load(path)\n'
                                   '    numpy.load(path, allow_pickle=True)\n'
                                   '    yload(path)\n')
    assert [p.split(': ', 1)[1] for p in problems] == [
        'pickle.load(...)', 'subprocess.run with an argument that is not a list',
        'subprocess.check_output with an argument that is not a list',
        'subprocess.Popen with an argument that is not a list', 'os.system(...)',
        'torch.load without weights_only=True', 'np.load(allow_pickle=True)',
        'yaml.load(...)']
    # and names that only look alike are not flagged: a method called run, re.compile
    assert scan_text(tmp_path, 'import re\n'
                               'def f(runner, path: str):\n'
                               '    runner.run(path)\n'
                               '    re.compile(path)\n') == []


class TouchesMarker:
    """Unpickling this creates ``pwned`` in the working directory."""

    def __reduce__(self) -> tuple:
        return (os.system, ('touch pwned',))


def test_code_running_checkpoint_in_the_node_runs_nothing(tmp_path: Path,
                                                          ros_env: dict[str, str]) -> None:
    # at a path full of shell syntax, which reaches the node process as one argument
    evil = tmp_path / HOSTILE_NAME / 'evil.pt'
    evil.parent.mkdir()
    torch.save({'format': CHECKPOINT_FORMAT, 'model_args': {}, 'state_dict': {},
                'x': TouchesMarker()}, evil)
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)
    node = NodeProcess(node_command(evil, namespace='/security_evil'), ros_env, cwd=tmp_path)
    try:
        node.wait(timeout=120)
    finally:
        code = node.stop()
    assert code == 1 and 'refused' in node.log_text(), node.log_text()
    assert str(evil) in node.log_text()   # the node names the file it refused, intact
    assert not list(tmp_path.rglob('pwned'))


def hostile_definition_bag(path: Path, storage: str, marker: Path) -> Path:
    """Write a bag that also holds a topic whose message definition looks like code."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores
    from rosbags.typesys.msg import get_types_from_msg
    payload = f"__import__('pathlib').Path('{marker}').touch()"
    definition = (f"string CODE=x'); {payload}; ('\n"
                  f'string CODE2="); {payload}; ("\n'
                  'int32 class\nint32 import\nstring[<=3] lambda\n')
    msgtype = 'evil_msgs/msg/Evil'
    types = get_types_from_msg(definition, msgtype)
    store = get_typestore(Stores.EMPTY)
    store.register(types)
    assert not marker.exists()
    typestore, stamp, (w, h) = synth_bag.TYPESTORE, 1_000_000_000, (640, 480)
    plugin = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {topic: writer.add_connection(topic, kind, typestore=typestore)
                 for topic, kind in (('/camera/image_raw', 'sensor_msgs/msg/Image'),
                                     ('/camera/camera_info', 'sensor_msgs/msg/CameraInfo'),
                                     ('/depth', 'sensor_msgs/msg/Image'))}
        evil = writer.add_connection('/evil', msgtype, msgdef=definition,
                                     rihs01=store.hash_rihs01(msgtype))
        msgs = {'/camera/camera_info': synth_bag.camera_info_message(
                    stamp, w, h, (500.0, 500.0, w / 2, h / 2)),
                '/camera/image_raw': synth_bag.image_message(
                    stamp, np.full((h, w, 3), 128, np.uint8), 'rgb8'),
                '/depth': synth_bag.image_message(stamp, np.full((h, w), 5.0, '<f4'),
                                                  '32FC1')}
        for topic, msg in msgs.items():
            writer.write(conns[topic], stamp, typestore.serialize_cdr(msg,
                                                                      conns[topic].msgtype))
        writer.write(evil, stamp, b'\x00\x01\x00\x00' + bytes(16))
    return path


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_bag_message_definitions_run_nothing(tmp_path: Path, small_checkpoint: Path,
                                             capsys: pytest.CaptureFixture,
                                             storage: str) -> None:
    marker = tmp_path / 'pwned'
    bag = hostile_definition_bag(tmp_path / 'bag', storage, marker)
    code = bag_eval.main([str(bag), '--checkpoint', str(small_checkpoint), '--out',
                          str(tmp_path / 'out'), '--device', 'cpu', '--image-topic',
                          '/camera/image_raw', '--camera-info-topic', '/camera/camera_info',
                          '--depth-topic', '/depth'])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]    # the definitions were read, and only read
    assert not marker.exists()


def test_command_line_paths_are_only_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture,
                                           small_checkpoint: Path) -> None:
    # Every file exists, so each tool gets past "not found" and opens it; each then stops
    # at a fault of the content it read, named with the path. The node process started
    # with such a path: test_code_running_checkpoint_in_the_node_runs_nothing.
    monkeypatch.chdir(tmp_path)
    hostile = tmp_path / HOSTILE_NAME
    hostile.mkdir()
    broken = hostile / 'broken.pt'
    broken.write_bytes(b'a file, but not a checkpoint')
    model = hostile / 'model.pt'
    model.write_bytes(small_checkpoint.read_bytes())
    bag = hostile_definition_bag(hostile / 'bag', 'mcap', tmp_path / 'pwned')
    split = hostile / 'files.txt'
    split.write_text('2011_09_26/2011_09_26_drive_0001_sync 0000000000 l\n')
    from eigen_depth_ros.tools import soak
    from eigen_depth_training import evaluate, train
    absent = f'{hostile}: 1 drive(s) absent: 2011_09_26/2011_09_26_drive_0001_sync'
    calls = {   # name: (main, argv, the error that shows the file was read)
        'bag-eval': (bag_eval.main, [str(bag), '--checkpoint', str(broken), '--out',
                                     str(hostile / 'o'), '--image-topic', '/camera/image_raw',
                                     '--depth-topic', '/depth', '--device', 'cpu'],
                     f'{broken}: not a checkpoint'),
        'export': (export.main, ['--checkpoint', str(broken), '--format', 'onnx', '--out',
                                 str(hostile / 'x.onnx')], f'{broken}: not a checkpoint'),
        'soak': (soak.main, ['--checkpoint', str(broken), '--out', str(hostile / 's.json')],
                 f'{broken}: not a checkpoint'),
        'train': (train.main, ['--data-root', str(hostile), '--train-split', str(split),
                               '--out', str(hostile / 'run'), '--no-progress'], absent),
        'eval': (evaluate.main, ['--checkpoint', str(model), '--data-root', str(hostile),
                                 '--split', str(split), '--out', str(hostile / 'e')], absent),
        'synth-bag': (synth_bag.main, [str(hostile / 'b'), '--kitti-root', str(hostile)],
                      f'{hostile}/2011_09_26/calib_cam_to_cam.txt: cannot read'),
    }
    for name, (main, argv, read) in calls.items():
        try:
            code = main(argv)
        except SystemExit as exc:   # argparse
            code = exc.code
        err = capsys.readouterr().err
        assert code in (1, 2), f'{name}: {code}'
        assert read in err and 'Traceback' not in err, f'{name}: {err[-500:]}'
        assert 'not found' not in err, f'{name}: {err[-500:]}'
    assert not list(tmp_path.rglob('pwned'))


def test_node_command_keeps_paths_intact_through_rcl_yaml() -> None:
    import yaml
    path = Path('/data/run #3/a: b.pt')
    cmd = node_command(path, params={'onnx_path': Path(HOSTILE_NAME), 'device': 'cpu',
                                     'max_depth': 10.0, 'points_stride': 2})
    values = {arg.split(':=', 1)[0]: yaml.safe_load(arg.split(':=', 1)[1])
              for arg, before in zip(cmd[1:], cmd) if before == '-p'}
    # what rcl's YAML parser makes of each value: the same string, float and integer
    assert values == {'checkpoint': str(path), 'onnx_path': HOSTILE_NAME, 'device': 'cpu',
                      'max_depth': 10.0, 'points_stride': 2}
    assert isinstance(values['max_depth'], float) and isinstance(values['points_stride'], int)


# ------------------------------------------------------------------------------ sockets


def decode_address(text: str) -> str:
    """``0100007F:1F90`` -> ``127.0.0.1:8080`` (IPv6 shown as hex)."""
    host, port = text.split(':')
    if len(host) == 8:
        host = '.'.join(str(int(host[i:i + 2], 16)) for i in (6, 4, 2, 0))
    return f'{host}:{int(port, 16)}'


def process_sockets(pid: int) -> dict[str, list[dict[str, str]]]:
    """Sockets of process ``pid``: its fd inodes matched in /proc/PID/net tables."""
    inodes = set()
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            target = os.readlink(f'/proc/{pid}/fd/{fd}')
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(int(target[len('socket:['):-1]))
    found: dict[str, list[dict[str, str]]] = {'socket_fds': [{'count': str(len(inodes))}]}
    for table in ('tcp', 'tcp6', 'udp', 'udp6', 'raw', 'raw6'):
        for line in Path(f'/proc/{pid}/net/{table}').read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[9]) in inodes:
                found.setdefault(table, []).append({
                    'local': decode_address(fields[1]), 'remote': decode_address(fields[2]),
                    'state': fields[3]})
    for line in Path(f'/proc/{pid}/net/unix').read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[6]) in inodes:
            found.setdefault('unix', []).append({
                'listening': str(bool(int(fields[3], 16) & 0x10000)),
                'path': fields[7] if len(fields) > 7 else ''})
    return found


BARE_PARTICIPANT = """
import sys
import rclpy
rclpy.init()
node = rclpy.create_node('bare_participant')
print('ready', flush=True)
sys.stdin.read()
"""


def bare_participant_sockets(env: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """Return the sockets of a bare rclpy node in ``env``: what DDS itself opens."""
    proc = subprocess.Popen([sys.executable, '-c', BARE_PARTICIPANT], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == 'ready'
        return process_sockets(proc.pid)
    finally:
        proc.communicate(timeout=60)   # closes its stdin: it exits


@pytest.mark.ros
@pytest.mark.slow
def test_node_opens_no_socket_and_takes_a_hostile_path_as_a_path(
        tmp_path: Path, ros_env: dict[str, str]) -> None:
    from sensor_msgs.msg import Image

    folder = tmp_path / HOSTILE_NAME
    folder.mkdir()
    checkpoint = write_small_checkpoint(folder / 'model #1.pt')
    log = tmp_path / 'node.log'
    cmd = node_command(checkpoint, namespace='/security', params={'device': 'cpu'})
    with NodeProcess(cmd, ros_env, log, cwd=tmp_path) as proc, \
            RosSide('security_test', process=proc) as ros:
        sub = ros.subscribe('/security/depth', Image, output_qos(5))
        pub = ros.publisher('/security/image', Image)
        ros.wait_connected([pub], [sub], 90.0)
        image = camera_image(np.zeros((32, 64, 3), np.uint8))
        publish_until(ros, '/security/image', image, lambda: ros.counts['/security/depth'],
                      'an answer', period=0.2, timeout=90.0)
        sockets = process_sockets(proc.pid)
    text = log.read_text(errors='replace')
    assert str(checkpoint) in text and 'Traceback' not in text
    assert not list(tmp_path.rglob('pwned'))
    print(f'\nsockets of depth_node (pid {proc.pid}): {json.dumps(sockets)}')
    print(f'sockets of a bare rclpy participant: {json.dumps(bare_participant_sockets(ros_env))}')
    tcp = sockets.get('tcp', []) + sockets.get('tcp6', [])
    assert not [s for s in tcp if s['state'] == '0A'], f'listening TCP sockets: {tcp}'
    assert not tcp, f'TCP sockets: {tcp}'
    # UDP: exactly what a bare rclpy participant opens in the same environment (the rmw's)
    udp = sockets.get('udp', []) + sockets.get('udp6', [])
    bare = bare_participant_sockets(ros_env)
    assert len(udp) == len(bare.get('udp', []) + bare.get('udp6', [])), (udp, bare)
    assert not [s for s in sockets.get('unix', []) if s['listening'] == 'True']
    assert not sockets.get('raw', []) + sockets.get('raw6', [])


def test_every_subcommand_loads_checkpoints_through_the_safe_loader() -> None:
    """No module but checkpoint.py calls torch.load (the scan checks weights_only too)."""
    callers: dict[str, Any] = {}
    for path in SOURCES:
        for call in (n for n in ast.walk(ast.parse(path.read_text()))
                     if isinstance(n, ast.Call) and dotted(n.func) == 'torch.load'):
            callers.setdefault(path.relative_to(ROOT).as_posix(), []).append(call.lineno)
    assert set(callers) <= {'eigen_depth_ros/core/checkpoint.py'}, callers
