"""Import TensorFlow for a command: early, while the embedded server boots, and quietly.

TensorFlow writes a few lines straight to file descriptor 2 while it loads and first
looks for devices (``Could not find cuda drivers``, ``failed call to cuInit``, the oneDNN
notice), before absl's logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence
them and Python's ``sys.stderr`` never sees them. They say nothing a user can act on
and appear on every run, above the run's own progress.

:func:`import_tensorflow` points descriptor 2 at a pipe for the length of the import; a
thread passes every line on to the real stderr except the known start-up lines
(:data:`STARTUP_NOISE`), so an unexpected message or a crash's last words still get
through. ``--debug`` passes everything.

Done in the command's main thread right after the embedded server's process starts, the
import overlaps the server's start-up instead of following it.
"""

import os
import re
import sys
import threading

# Only lines that say nothing a user can act on; anything else TensorFlow prints is kept.
STARTUP_NOISE = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|^[IWE]\d{4} [\d:.]+\s+\d+ (?:"
    rb"cudart_stub\.cc:\d+\] Could not find cuda drivers"
    rb"|cuda_platform\.cc:\d+\] failed call to cuInit"
    rb"|port\.cc:\d+\] oneDNN custom operations are on"
    rb"|cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized"
    rb"|cpu_feature_guard\.cc:\d+\] To enable the following instructions"
    rb")"
)


def import_tensorflow(*, quiet: bool = True) -> None:
    """Import TensorFlow and look for its devices once; with ``quiet``, drop its start-up lines."""
    if not quiet:
        _load()
        return
    with _filtered_stderr(STARTUP_NOISE):
        _load()


def _load() -> None:
    import tensorflow as tf

    tf.config.list_physical_devices()  # the device search is what prints the CUDA lines
    # TFDS imports its builders inside etils's lazy-import context, which swaps the
    # process-wide `builtins.__import__` for a while: imported first inside a run, that
    # window killed Prefect's events thread mid-import (`No module named
    # 'prefect.settings.PREFECT_LOGGING_INTERNAL_LEVEL'`, "Could not import TFDS dataset
    # builders", then `'LazyModule' object is not callable`). Imported here, before the
    # flow starts Prefect's threads, the window has no other thread to catch.
    import tensorflow_datasets  # noqa: F401


class _filtered_stderr:
    """Descriptor 2 through a pipe whose lines matching ``noise`` are dropped, the rest passed on."""

    def __init__(self, noise: re.Pattern[bytes]) -> None:
        self.noise = noise

    def __enter__(self) -> None:
        sys.stderr.flush()  # what Python wrote before stays before
        self.real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self.reader = threading.Thread(target=self._pass_on, args=(read_end,), daemon=True)
        self.reader.start()

    def __exit__(self, *exc) -> None:
        sys.stderr.flush()
        os.dup2(self.real, 2)  # closes the pipe's last write end: the reader sees its end
        self.reader.join(timeout=5)
        os.close(self.real)

    def _pass_on(self, read_end: int) -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._emit(line + b"\n")
            if pending:
                self._emit(pending)

    def _emit(self, line: bytes) -> None:
        if not self.noise.search(line):
            os.write(self.real, line)
