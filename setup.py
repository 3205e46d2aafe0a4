"""Install the ROS 2 package ``eigen_depth_ros`` and the training package ``eigen_depth_training``."""
from glob import glob

from setuptools import setup

PACKAGE = 'eigen_depth_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=[PACKAGE, 'eigen_depth_training'],
    # training/ is the source folder of the package eigen_depth_training; it is never
    # installed as a top-level package called "training".
    package_dir={'eigen_depth_training': 'training'},
    package_data={PACKAGE: ['data/*']},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='eigen_depth_ros maintainers',
    maintainer_email='maintainers@eigen-depth-ros.invalid',
    description='Monocular metric depth (Eigen et al., NIPS 2014) as a ROS 2 node.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            f'depth_node = {PACKAGE}.node:main',
            f'eigen-depth = {PACKAGE}.cli:main',
        ],
    },
)
