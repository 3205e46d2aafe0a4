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
SIGINT and SIGTERM during training: finish the current step, save, then stop.

Ctrl-C, ``timeout`` and batch schedulers signal the whole process group. The training
process turns the signal into a request that the loop reads at each step boundary
(:class:`StopRequest`); its data workers ignore it (:func:`ignore_stop_signals`), so that
none dies mid-step.
"""
from __future__ import annotations

import signal
import threading
from typing import Any


class StopRequest:
    """
    SIGINT/SIGTERM handler that asks the loop to stop at the end of the current step.

    A second Ctrl-C raises :class:`KeyboardInterrupt` at once (default handler restored).
    Handlers are only installed from the main thread, and the previous ones come back when
    the block ends.

    :ivar requested: a signal arrived.
    :ivar signal_name: its name (``'SIGINT'`` or ``'SIGTERM'``), empty before.
    """

    def __init__(self) -> None:
        """Start with no request and no handler installed."""
        self.requested = False
        self.signal_name = ''
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def __enter__(self) -> StopRequest:
        """Install the handlers (main thread only)."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        """Restore the handlers that were there before."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def ignore_stop_signals(_worker_id: int) -> None:
    """
    Leave SIGINT and SIGTERM to the training process (a DataLoader ``worker_init_fn``).

    The training process finishes its step and saves; a data worker killed by the same
    signal would abort the step. Workers still exit with their parent.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
