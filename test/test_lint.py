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
The ament linter tests: flake8 (99 columns), pep257, copyright and xmllint.

flake8 and pep257 run as ament_python packages run them, one test per folder, so a failure
names whose files need work: ament_flake8 and ament_pep257 come from PyPI
(ros-kilted-ament-flake8 / -pep257, with flake8, pydocstyle and the flake8 plugins ament
expects).

ament_copyright is not on PyPI, and ament_xmllint only in an old release (0.14.2) that
runs the ``xmllint`` program and downloads package.xml's schema, which neither a pip venv
nor an offline machine has; both run in an apt ROS 2 install (package.xml keeps them as
test dependencies). Here the suite checks what they check:

* copyright: every Python file starts with a copyright line and the Apache-2.0 header,
  the license package.xml declares;
* xmllint: every XML file is well-formed; package.xml is a valid format 3 manifest as
  catkin_pkg (the parser colcon, rosdep and bloom use) validates it; the Fast DDS profile
  in config/ validates against the XML schema the installed Fast DDS ships (with lxml).
"""
from __future__ import annotations

import datetime
from pathlib import Path
import re
import sys
from typing import Any
import xml.etree.ElementTree as ET

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ['eigen_depth_ros', 'training', 'test', 'launch']
COPYRIGHT_LINE = re.compile(r'# Copyright (\d{4})(?:-(\d{4}))? \S.*\n')
APACHE_2 = """#
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


def header_problem(text: str) -> str | None:
    """
    Say what is wrong with the copyright header of a Python source, None when nothing.

    The header is a ``# Copyright YEAR[-YEAR] HOLDER`` line (after an optional ``#!``
    line), then the Apache License 2.0 notice, as ament_copyright's ``apache2`` template.
    """
    if text.startswith('#!'):
        text = text.partition('\n')[2]
    match = COPYRIGHT_LINE.match(text)
    if match is None:
        return 'no "# Copyright YEAR HOLDER" first line'
    last = int(match.group(2) or match.group(1))
    if not 1990 <= int(match.group(1)) <= last <= datetime.date.today().year:
        return f'copyright years {match.group(0).split()[2]} out of order or in the future'
    if not text[match.end():].startswith(APACHE_2):
        return 'the Apache-2.0 notice does not follow the copyright line'
    return None


def test_copyright_headers() -> None:
    files = sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob('*.py'))
    files.append(ROOT / 'setup.py')
    problems = [f'{p.relative_to(ROOT)}: {why}' for p in files
                if (why := header_problem(p.read_text(encoding='utf-8')))]
    assert len(files) > 100 and not problems, '\n'.join(problems)
    # the license the headers grant is the one the package declares
    assert [e.text for e in ET.parse(ROOT / 'package.xml').getroot().iter('license')] == \
        ['Apache-2.0']


def test_copyright_check_refuses_what_ament_copyright_refuses() -> None:
    good = (ROOT / 'setup.py').read_text(encoding='utf-8')
    assert header_problem(good) is None
    assert header_problem('#!/usr/bin/env python3\n' + good) is None
    assert 'first line' in header_problem(good.replace('# Copyright', '# Written', 1))
    assert 'future' in header_problem(good.replace('Copyright 2026', 'Copyright 2999', 1))
    assert 'Apache' in header_problem(good.replace('Version 2.0', 'Version 3.0', 1))
    assert 'Apache' in header_problem(good.replace('# limitations under the License.\n',
                                                   '', 1))


def test_copyright() -> None:
    main = pytest.importorskip('ament_copyright.main', reason='ament_copyright is not on '
                               'PyPI (apt ROS 2 only); test_copyright_headers checks the same')
    rc = main.main(argv=[str(ROOT / folder) for folder in FOLDERS])
    assert rc == 0, 'copyright/license headers missing (see the output above)'


def xml_files() -> list[Path]:
    """Return package.xml and every XML file of config/ (what ament_xmllint is given)."""
    return [ROOT / 'package.xml', *sorted((ROOT / 'config').glob('*.xml'))]


def test_xml_files_are_well_formed() -> None:
    files = xml_files()
    assert len(files) >= 2
    for path in files:
        ET.parse(path)   # raises ParseError, naming line and column, on malformed XML


def manifest_problem(text: str) -> str | None:
    """
    Say why ``text`` is not a valid format 3 package.xml of this package, None if it is.

    catkin_pkg checks the manifest as the format 3 schema (REP 149) does: required and
    allowed tags, their order-free cardinality, versions, emails, dependency names; its
    warnings count as problems too.
    """
    from catkin_pkg.package import InvalidPackage, parse_package_string
    warnings: list[str] = []
    try:
        package = parse_package_string(text, warnings=warnings)
    except InvalidPackage as exc:
        return str(exc)
    if warnings:
        return '; '.join(warnings)
    if package.package_format != 3 or 'package_format3.xsd' not in text:
        return 'not format 3, or its xml-model is not the format 3 schema'
    if package.name != 'eigen_depth_ros' or \
            package.get_build_type() != 'ament_python':
        return f'package {package.name} of build type {package.get_build_type()}'
    return None


def test_package_xml_is_a_valid_format_3_manifest() -> None:
    assert manifest_problem((ROOT / 'package.xml').read_text(encoding='utf-8')) is None


def test_manifest_check_refuses_what_the_schema_refuses() -> None:
    good = (ROOT / 'package.xml').read_text(encoding='utf-8')
    assert 'license' in manifest_problem(good.replace('<license>Apache-2.0</license>', ''))
    assert 'exec_dep' in manifest_problem(good.replace(
        '<exec_depend>rclpy</exec_depend>', '<exec_dep>rclpy</exec_dep>'))
    assert 'version' in manifest_problem(good.replace('<version>0.1.0</version>',
                                                      '<version>0.1</version>'))
    assert 'format 3' in manifest_problem(good.replace('format="3"', 'format="2"'))


def fastdds_profile_schema() -> Path | None:
    """Return the profiles XML schema the installed Fast DDS ships (3.x or 2.x name)."""
    names = ('fastdds_profiles.xsd', 'fastRTPS_profiles.xsd')
    found = [p for name in names for p in sorted((Path(sys.prefix) / 'share').rglob(name))]
    return found[0] if found else None


def test_fastdds_profile_matches_the_schema_fast_dds_ships() -> None:
    etree = pytest.importorskip('lxml.etree', reason='lxml, the XML schema validator, is not '
                                'installed (pip install lxml)')
    schema_path = fastdds_profile_schema()
    if schema_path is None:
        pytest.skip(f'no Fast DDS profiles schema under {sys.prefix}/share (an apt ROS 2 '
                    'install keeps it elsewhere)')
    xsd = etree.parse(str(schema_path))
    schema = etree.XMLSchema(xsd)
    namespace = xsd.getroot().get('targetNamespace')

    def profile(text: bytes) -> Any:   # an lxml element
        # Fast DDS reads a profile's elements by their local names; Fast DDS 2.x's schema
        # (Jazzy) names another namespace than 3.x's, which the shipped profile uses
        root = etree.fromstring(text)
        for element in root.iter(etree.Element):
            element.tag = etree.QName(namespace, etree.QName(element).localname).text
        return root

    shipped = (ROOT / 'config' / 'fastdds_shm.xml').read_bytes()
    assert schema.validate(profile(shipped)), f'{schema_path.name}: {schema.error_log}'
    # and the schema does refuse a broken profile: a segment size that is not a number
    assert not schema.validate(profile(shipped.replace(b'<segment_size>',
                                                       b'<segment_size>big', 1)))


def test_xmllint() -> None:
    main = pytest.importorskip('ament_xmllint.main', reason='ament_xmllint is not on PyPI '
                               '(apt ROS 2 only); test_xml_files_are_well_formed, '
                               'test_package_xml_is_a_valid_format_3_manifest and '
                               'test_fastdds_profile_matches_the_schema_fast_dds_ships check '
                               'the same')
    rc = main.main(argv=[str(ROOT / 'package.xml'), str(ROOT / 'config')])
    assert rc == 0, 'xmllint errors (see the output above)'
