"""Background processes of the lab: start detached, remember by pid file, stop, measure.

Each process has a name; its pid is in ``<state>/run/<name>.pid`` and its output in
``<state>/log/<name>.log``. Processes outlive the ``labctl`` call that started them.
"""
import os
import signal
import subprocess
import time


class Supervisor:
    def __init__(self, state):
        self.run_dir = os.path.join(state, "run")
        self.log_dir = os.path.join(state, "log")
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)

    def _pid_file(self, name):
        return os.path.join(self.run_dir, name + ".pid")

    def log_path(self, name):
        return os.path.join(self.log_dir, name + ".log")

    def pid(self, name):
        """The pid of ``name`` if it runs, else None."""
        try:
            with open(self._pid_file(name)) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        # a zombie or a recycled pid is not ours
        try:
            with open(f"/proc/{int(pid)}/stat") as handle:
                if handle.read().split(")")[-1].split()[0] == "Z":
                    return None
        except OSError:
            return None
        return pid

    def names(self):
        return sorted(f[:-4] for f in os.listdir(self.run_dir) if f.endswith(".pid"))

    def start(self, name, argv, env=None, cwd=None):
        """Start ``argv`` detached unless ``name`` already runs; return its pid."""
        running = self.pid(name)
        if running:
            return running
        with open(self.log_path(name), "ab") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=dict(os.environ, **(env or {})), cwd=cwd, start_new_session=True,
            )
        with open(self._pid_file(name), "w") as handle:
            handle.write(str(proc.pid))
        return proc.pid

    def stop(self, name, timeout=15):
        pid = self.pid(name)
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.pid(name) and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.pid(name):
                os.kill(pid, signal.SIGKILL)
        try:
            os.unlink(self._pid_file(name))
        except FileNotFoundError:
            pass

    def rss_bytes(self, name):
        """Resident memory of the process, or 0."""
        pid = self.pid(name)
        if not pid:
            return 0
        try:
            with open(f"/proc/{int(pid)}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def tail(self, name, lines=20):
        try:
            with open(self.log_path(name), "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 8192))
                return b"\n".join(handle.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""
