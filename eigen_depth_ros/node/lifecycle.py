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
The ``depth_lifecycle_node`` executable: ``depth_node`` as a managed (lifecycle) node.

The same node as :class:`~eigen_depth_ros.node.depth_node.DepthNode`, brought up by
lifecycle transitions (``lifecycle_msgs``: ``<node>/change_state``, ``<node>/get_state``) as
Nav2's lifecycle_manager does: *configure* loads and warms up the network and creates the
publishers, *activate* subscribes the camera (frames are answered from then on),
*deactivate* stops taking its frames (the subscription stays, so a running camera need not
match a new one), *cleanup* unsubscribes, stops the worker and frees the network,
*shutdown* ends the process with exit status 0. A transition asked for in the wrong state is
refused by rclpy and the node keeps running. With ``--autostart`` on the command line (the
launch file's ``autostart:=true``) the node configures and activates itself.
"""
from __future__ import annotations

import sys
import threading
from typing import Any

from lifecycle_msgs.srv import ChangeState
from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn

from .depth_node import DepthCore, run_node, start_error, StartupError
from .parameters import NODE_NAME

AUTOSTART_FLAG = '--autostart'
"""Command-line flag (before ``--ros-args``) that configures and activates at start."""


class ManagedDepthNode(DepthCore, LifecycleNode):
    """
    The depth node as a lifecycle node: unconfigured until told otherwise.

    :param node_name: the node name (``eigen_depth`` unless remapped).
    :param kwargs: passed to :class:`rclpy.lifecycle.LifecycleNode`.
    :raises StartupError: after logging one error, when a parameter is invalid.
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.finished = threading.Event()
        # rclpy 7.1 (Jazzy) raises out of the change_state service when the transition does
        # not start at the current state, which ends the process; rclpy 9.1 answers false.
        self._rclpy_change_state = self._service_change_state.callback
        self._service_change_state.callback = self._change_state
        try:
            self._declare()
        except (ValueError, ParameterException) as exc:
            self.get_logger().error(f'cannot start: {start_error(exc)}')
            self.destroy_node()
            raise StartupError(str(exc)) from None

    def _change_state(self, request: ChangeState.Request, response: ChangeState.Response
                      ) -> ChangeState.Response:
        """Refuse a transition the current state has not (``success: false``), else make it."""
        available = {transition[0] for transition in self._state_machine.available_transitions}
        if not request.transition.label and request.transition.id not in available:
            self.get_logger().warning(f'transition {request.transition.id} refused: none such '
                                      f'from state {self._state_machine.current_state[1]}')
            response.success = False
            return response
        return self._rclpy_change_state(request, response)

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Load and warm up the network and create the publishers; FAILURE says why."""
        try:
            self._configure()
        except Exception as exc:  # noqa: B902 - a transition reports, never raises
            self.get_logger().error(f'cannot configure: {start_error(exc)}')
            self._cleanup()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        """Subscribe the camera: frames are answered from now on."""
        try:
            self._activate()
        except Exception as exc:  # noqa: B902 - a transition reports, never raises
            self.get_logger().error(f'cannot activate: {start_error(exc)}')
            self._deactivate()
            return TransitionCallbackReturn.FAILURE
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        """Stop taking the camera's frames until activated again."""
        self._deactivate()
        self.get_logger().info('inactive: camera frames ignored until activated')
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        """Unsubscribe, stop the worker and free the network and the publishers."""
        self._cleanup()
        self.get_logger().info('unconfigured: network freed')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        """Undo whatever is set up, then let :func:`main` end the process."""
        self._deactivate()
        self._cleanup()
        self.finished.set()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        """Undo whatever is set up after a failed transition; back to unconfigured."""
        self._deactivate()
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        """Stop the worker thread (waiting for the frame in progress), then the node."""
        if hasattr(self, '_worker'):
            self._stop_worker()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """
    Run the managed node until it is shut down, or Ctrl-C or SIGTERM.

    :param args: command-line arguments (default ``sys.argv``); :data:`AUTOSTART_FLAG` among
        them configures and activates the node at once.
    :return: 0 on a clean stop, 1 when the node could not start or autostart failed.
    """
    args = list(sys.argv if args is None else args)
    autostart = AUTOSTART_FLAG in args
    if autostart:
        args.remove(AUTOSTART_FLAG)
    return run_node(ManagedDepthNode, args, autostart)


if __name__ == '__main__':
    sys.exit(main())
