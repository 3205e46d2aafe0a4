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

"""Install the ROS 2 package ``eigen_depth_ros`` and the training package ``eigen_depth_training``."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'eigen_depth_ros'
# The eigen-depth tools' and training's Python dependencies beyond the node's (rclpy and the
# messages, numpy, OpenCV, torch, PyYAML: package.xml, for rosdep). On the apt route:
# `pip install -e .[tools]`; the pip route gets them pinned from requirements.txt.
TOOLS = ['rosbags', 'mcap', 'zstandard', 'matplotlib', 'tqdm', 'tensorboard', 'onnx',
         'onnxruntime']

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, f'{PACKAGE}.*']) + ['eigen_depth_training']
    + [f'eigen_depth_training.{name}' for name in find_packages('training')],
    # training/ is the source folder of the package eigen_depth_training; it is never
    # installed as a top-level package called "training".
    package_dir={'eigen_depth_training': 'training'},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    extras_require={'tools': TOOLS},
    zip_safe=True,
    maintainer='eigen_depth_ros maintainers',
    maintainer_email='maintainers@eigen-depth-ros.invalid',
    description='Monocular metric depth (Eigen et al., NIPS 2014) as a ROS 2 node.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            f'depth_node = {PACKAGE}.node.depth_node:main',
            f'depth_lifecycle_node = {PACKAGE}.node.lifecycle:main',
            f'eigen-depth = {PACKAGE}.tools.cli:main',
        ],
    },
)
