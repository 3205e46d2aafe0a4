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
Keep large message buffers in the heap (glibc), so big messages do not page-fault.

glibc serves every allocation above ``M_MMAP_THRESHOLD`` (128 KiB at start, raised
dynamically, at most 32 MiB) with a fresh ``mmap`` and unmaps it on ``free``, and returns
freed heap memory above ``M_TRIM_THRESHOLD`` to the system. rclpy allocates new buffers for
every message it converts and serialises, so each camera-sized message then pays one page
fault per 4 KiB page touched. Measured on the development machine (rclpy serialise of one
sensor_msgs/Image, ms): 1.9 MB (a 1242x375 32FC1 depth image) 1.86 -> 0.42, 4.8 MB (a
300k-point coloured cloud) 5.1 -> 1.06, 7 MB 8.5 -> 1.5 (docs/speed.md).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 16 << 20
"""Allocations up to this size come from the heap and are reused (16 MiB)."""
TRIM_THRESHOLD = 64 << 20
"""Free heap memory kept before glibc returns it to the system (64 MiB)."""
USER_SETTINGS = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_')
"""Environment variables that set the thresholds (so do ``glibc.malloc`` tunables)."""


def keep_large_buffers(mmap_threshold: int = MMAP_THRESHOLD,
                       trim_threshold: int = TRIM_THRESHOLD) -> str:
    """
    Raise glibc's mmap and trim thresholds for this process, unless the user set them.

    :return: one line saying what was done, for the log.
    """
    chosen = [name for name in USER_SETTINGS if name in os.environ]
    if 'glibc.malloc.' in os.environ.get('GLIBC_TUNABLES', ''):
        chosen.append('GLIBC_TUNABLES')
    if chosen:
        return f'malloc thresholds left as set by {", ".join(chosen)}'
    name = ctypes.util.find_library('c')
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return f'malloc thresholds unchanged: no mallopt in the C library {name!r}'
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if not mallopt(M_MMAP_THRESHOLD, mmap_threshold):
        return 'malloc thresholds unchanged: mallopt refused M_MMAP_THRESHOLD'
    if not mallopt(M_TRIM_THRESHOLD, trim_threshold):
        return (f'malloc: buffers up to {mmap_threshold >> 20} MiB reused from the heap '
                '(M_MMAP_THRESHOLD); mallopt refused M_TRIM_THRESHOLD')
    return (f'malloc: buffers up to {mmap_threshold >> 20} MiB reused from the heap '
            f'(M_MMAP_THRESHOLD), {trim_threshold >> 20} MiB kept free (M_TRIM_THRESHOLD)')
