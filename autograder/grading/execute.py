"""Guarded execution of a notebook, cell by cell (nbgrader's Execute preprocessor, extended).

A per-cell timeout bounded by what is left of the notebook's wall budget; a dead kernel (`os._exit`,
a memory or output limit, a loop that ignores SIGINT) is restarted and the earlier non-test cells
replayed silently, so one bad cell costs that cell, not the notebook; every such event is recorded
with its cell and reason.
"""
from __future__ import annotations

import time

#: Why a kernel stopped (sandbox_kernel's reasons) -> the cell status we report.
KERNEL_REASONS = {"timeout": "timeout", "cpu": "timeout", "output": "output_limit", "memory": "memory",
                  "died": "kernel_died", None: "kernel_died", "shutdown": "kernel_died"}


def _guard_class(sandboxed: bool):
    """GuardedExecute on top of nbgrader's Execute or the sandbox's SandboxedExecute."""
    from jupyter_core.utils import run_sync
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat import NotebookNode
    from traitlets import Integer, default

    if sandboxed:
        from ..sandbox.kernel import SandboxedExecute as Base
    else:
        from nbgrader.preprocessors import Execute as Base

    class GuardedExecute(Base):
        """nbgrader's Execute that survives dead and stuck kernels and records why.

        incidents (class attribute, per worker process): one dict per event,
        `{"notebook", "cell_index", "grade_id", "reason", "detail"}`; the worker
        clears it before each submission.
        """

        notebook_timeout = Integer(900, help="wall seconds for the whole notebook").tag(config=True)
        incidents: list = []
        #: time.monotonic() past which no notebook of the submission may run (set per submission).
        stop_at: float = float("inf")
        #: Called (no arguments) as each notebook's execution starts, once nbgrader has written
        #: every notebook executed before it (set per submission; it must not raise).
        before_notebook = None
        #: The notebooks (nbgrader's ``unique_key``) whose execution ended, in order.
        executed: list = []
        #: How many notebooks the submission runs (set per submission): while more follow the
        #: one running, the sandbox starts the next one's kernel ahead (``SandboxedExecute``).
        notebooks: int = 0

        @default("shutdown_kernel")
        def _kill_when_done(self):
            # The kernel is thrown away once its last cell replied, and every output came before
            # that reply: kill it rather than wait for its graceful exit (0.4 s a notebook).
            return "immediate"

        def preprocess(self, nb, resources=None, km=None):
            if GuardedExecute.before_notebook is not None:
                GuardedExecute.before_notebook()
            self._deadline = min(time.monotonic() + self.notebook_timeout, GuardedExecute.stop_at)
            self._replay: list[str] = []
            self._nb_name = (resources or {}).get("unique_key", "?")
            self._dead = False
            self._dead_why = ""
            self.warm_next = len(GuardedExecute.executed) + 1 < GuardedExecute.notebooks
            try:
                return super().preprocess(nb, resources, km)
            finally:
                GuardedExecute.executed.append(self._nb_name)

        def _get_timeout(self, cell):
            # Each cell gets its own limit, but never more than the notebook has left.
            timeout = super()._get_timeout(cell)
            left = max(1, int(self._deadline - time.monotonic()))
            return left if timeout is None else min(timeout, left)

        def _record(self, cell, index, reason, detail):
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            GuardedExecute.incidents.append({"notebook": self._nb_name, "cell_index": index, "grade_id": gid,
                                             "reason": reason, "detail": detail})
            cell.outputs.append(NotebookNode(output_type="error", ename=f"Grader{reason.title().replace('_', '')}",
                                             evalue=detail, traceback=[f"[grader] {detail}"]))

        def _restart(self) -> bool:
            """A fresh kernel with the earlier non-test cells replayed; False if that fails twice
            (a restart that fails once, e.g. on a loaded machine, must not cost the rest of the
            notebook); `_dead_why` then says why."""
            for _ in range(2):
                try:
                    run_sync(self.km.restart_kernel)(now=True)
                    run_sync(self.kc.wait_for_ready)(timeout=self.startup_timeout)
                    for source in self._replay:
                        if time.monotonic() > self._deadline:
                            self._dead_why = "its replay ran out of the notebook's time"
                            return False
                        msg_id = self.kc.execute(source, store_history=False, allow_stdin=False)
                        if self.kc.shell_channel is not None:
                            run_sync(self.async_wait_for_reply)(msg_id)
                    return True
                except Exception as exc:  # a kernel that cannot come back: the rest of the notebook is not run
                    self._dead_why = f"{type(exc).__name__}: {exc}"[:300]
                if time.monotonic() > self._deadline:
                    break
            return False

        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type != "code" or not cell.source.strip():
                return super().preprocess_cell(cell, resources, index)
            if getattr(self, "_dead", False) or time.monotonic() >= self._deadline:
                cell.outputs = []
                why = (f"not run: the kernel could not be restarted ({self._dead_why})"
                       if getattr(self, "_dead", False) else "not run: the submission's wall budget was used up")
                self._record(cell, index, "kernel_died" if getattr(self, "_dead", False) else "timeout", why)
                return cell, self.resources
            is_test = bool(cell.metadata.get("nbgrader", {}).get("grade"))
            try:
                cell, resources = super().preprocess_cell(cell, resources, index)
            except DeadKernelError:
                reason = KERNEL_REASONS.get(self._kernel_reason_after_death(), "kernel_died")
                self._record(cell, index, reason, {
                    "kernel_died": "the kernel died while running this cell (os._exit, a crash or a kill)",
                    "memory": "the kernel ran out of memory in this cell",
                    "output_limit": "this cell printed more output than allowed; the kernel was stopped",
                    "timeout": "this cell used up the notebook's wall limit",
                }[reason])
                self._dead = not self._restart()
                return cell, self.resources
            except CellTimeoutError:
                self._record(cell, index, "timeout",
                             "this cell ran past its time limit and ignored the interrupt; the kernel was restarted")
                self._dead = not self._restart()
                return cell, self.resources
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if any(o.get("ename") == "CellTimeoutError" for o in errors):
                GuardedExecute.incidents.append({"notebook": self._nb_name, "cell_index": index,
                                                 "grade_id": cell.metadata.get("nbgrader", {}).get("grade_id"),
                                                 "reason": "timeout", "detail": "this cell ran past its time limit and was interrupted"})
            elif any(o.get("ename") == "MemoryError" for o in errors):
                GuardedExecute.incidents.append({"notebook": self._nb_name, "cell_index": index,
                                                 "grade_id": cell.metadata.get("nbgrader", {}).get("grade_id"),
                                                 "reason": "memory", "detail": "this cell ran out of memory (MemoryError)"})
            elif not is_test:
                self._replay.append(cell.source)
            return cell, resources

        def _kernel_reason_after_death(self):
            # The sandbox records why it stopped the kernel only once the kernel is shut down,
            # which the restart does; peek at the manager's reason first.
            reason = getattr(self.km, "_reason", None) if sandboxed else None
            if reason is None and sandboxed:
                rc = None
                try:
                    rc = self.km.provisioner.process.poll()
                except Exception:
                    pass
                reason = "died" if rc is not None else None
            return reason

    return GuardedExecute
