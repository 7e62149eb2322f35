"""Where reports go, checked before a run starts, and how they are written while it runs.

``output(path, fmt)`` resolves and checks one destination at once (``gk.InvalidArgument`` naming
it otherwise), so that a run never ends unable to write what it found:

- a relative path is made absolute against the working directory at the start (a layer that
  ``chdir``s cannot send it elsewhere), a symlink is followed to its target, missing folders
  are created, and the folder must take a new file (one is made and removed to be sure);
- a regular file (or a new one) is replaced atomically, with the mode the umask gives new files:
  a reader sees the old report or the whole new one;
- a FIFO, a character device (``/dev/null``) or a file descriptor (``/dev/stdout``,
  ``/dev/fd/3``) is written through, once, at the end: it is never replaced by a regular file.

``ReportWriter`` writes every output as entries arrive, so a run that is killed leaves the
entries that finished (the report says the run is incomplete until it is not); HTML, which
draws pictures, at most every ``HTML_SECONDS``.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument

HTML_SECONDS = 2.0
_FD_PATH = re.compile(r"/dev/fd/([0-9]+)|/proc/self/fd/([0-9]+)", re.ASCII)
_STANDARD = {"/dev/stdout": 1, "/dev/stderr": 2}


@dataclass
class Output:
    """One destination of a report: ``path`` as given, its format, and how it is written.

    Made by ``output``, which sets exactly one of ``target``, ``device`` and ``fd``.

    Attributes
    ----------
    path : str
        The path as given (``--output``).
    fmt : str
        The format written into it: ``text``, ``json``, ``markdown`` or ``html``.
    target : pathlib.Path or None
        A regular file (or a new one), absolute, symlinks followed: replaced atomically.
    device : pathlib.Path or None
        A FIFO or a character device (``/dev/null``): opened and written through.
    fd : int or None
        A file descriptor (``/dev/stdout``, ``/dev/fd/3``), duplicated when the output was
        checked: written through.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gradcheck_kit.report import output
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     out = output(str(Path(folder) / "report.md"), "markdown")
    ...     out.write("# passed")
    ...     print(out.fmt, out.streamed, out.target.read_text())
    markdown False # passed
    """

    path: str
    fmt: str
    target: Path | None = None  # a regular file, replaced atomically
    device: Path | None = None  # a FIFO or a device, opened and written through
    fd: int | None = None  # a file descriptor (duplicated at the start), written through

    @property
    def streamed(self) -> bool:
        """Whether the output is written once, at the end (a stream cannot be rewritten).

        Returns
        -------
        bool
            True for a FIFO, a device or a file descriptor (``ReportWriter`` writes it only at
            ``finish``); False for a regular file, replaced at every update.
        """
        return self.target is None

    def write(self, text: str, *, durable: bool = False) -> None:
        """Write ``text`` to the destination: a regular file atomically, a stream through.

        Parameters
        ----------
        text : str
            The rendered report (UTF-8).
        durable : bool, default False
            Wait until a regular file is on the disk (``fsync``; see ``write_atomic``).

        Raises
        ------
        OSError
            When the destination cannot be written.
        """
        if self.target is not None:
            write_atomic(self.target, text, durable=durable)
        elif self.device is not None:
            with open(self.device, "w", encoding="utf-8") as stream:
                stream.write(text)
        elif self.fd is not None:
            _write_fd(self.fd, text.encode("utf-8"))

    def __str__(self) -> str:
        return str(self.target or self.device or self.path)


def output(path: str, fmt: str) -> Output:
    """``path`` resolved and checked, before a run starts, for writing ``fmt`` reports into.

    A relative path is made absolute against the working directory now, ``~`` expanded and a
    symlink followed to its target; missing folders are created, and the folder must take a new
    file. ``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N`` and ``/proc/self/fd/N`` name file
    descriptors (duplicated now); a FIFO or a character device is written through.

    Parameters
    ----------
    path : str
        The destination, as given (``--output``).
    fmt : str
        The format it will hold: ``text``, ``json``, ``markdown`` or ``html``.

    Returns
    -------
    Output
        With ``target`` (a regular file), ``device`` (a FIFO or a device) or ``fd`` set.

    Raises
    ------
    InvalidArgument
        Naming ``path`` and the rule it breaks: a directory; a FIFO or device that is not
        writable; neither a file, a FIFO nor a device; a folder that cannot take a new file; a
        file descriptor that is not open; a path that cannot be used (a file where a folder
        should be, a loop of symlinks).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gradcheck_kit import InvalidArgument
    >>> from gradcheck_kit.report import output
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     out = output(str(Path(folder) / "new" / "report.json"), "json")
    ...     print(out.fmt, out.streamed, out.target.parent.is_dir())
    ...     try:
    ...         output(folder, "json")
    ...     except InvalidArgument as exc:
    ...         print(exc)
    json False True
    --output=... is a directory; accepted: a file path
    """
    fd = _descriptor(path)
    if fd is not None:
        return Output(path, fmt, fd=fd)
    where = Path(os.path.realpath(os.path.abspath(os.path.expanduser(path))))
    try:
        info = where.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:  # a file where a folder should be, a loop of symlinks
        raise InvalidArgument(
            f"--output={path!r} cannot be used: {exc.strerror}; accepted: a path in a writable folder"
        ) from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise InvalidArgument(f"--output={path!r} is a directory; accepted: a file path")
    if info is not None and (stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode)):
        if not os.access(where, os.W_OK):
            raise InvalidArgument(f"--output={path!r} ({where}) is not writable")
        return Output(path, fmt, device=where)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise InvalidArgument(f"--output={path!r} is neither a file, a FIFO nor a device")
    _check_folder(path, where.parent)
    return Output(path, fmt, target=where)


def _descriptor(path: str) -> int | None:
    """The file descriptor ``/dev/stdout`` and its kin name, duplicated (None: not one)."""
    found = _FD_PATH.fullmatch(path)
    number = _STANDARD.get(path, int(found.group(1) or found.group(2)) if found else None)
    if number is None:
        return None
    try:
        return os.dup(number)
    except OSError:
        raise InvalidArgument(f"--output={path!r}: file descriptor {number} is not open") from None


def _check_folder(path: str, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".gradcheck-kit-probe.")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise InvalidArgument(
            f"--output={path!r}: its folder {str(folder)!r} cannot take a new file ({exc.strerror}); "
            "accepted: a path in a writable folder"
        ) from None


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomic(path: str | os.PathLike[str], text: str, *, durable: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically: a reader sees the old file or the whole new one.

    The text goes to a temporary file in the same folder, which ``os.replace`` then moves over
    ``path``; missing folders are created, and the file gets the mode the umask gives new files.
    If anything fails, the temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    text : str
        Its new content (UTF-8).
    durable : bool, default True
        Wait until the text is on the disk (``fsync``) before replacing ``path``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        When the folder cannot be made or the file cannot be written or replaced.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gradcheck_kit.report import write_atomic
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     print(write_atomic(Path(folder) / "out" / "report.md", "# passed").read_text())
    # passed
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(stream.fileno(), new_file_mode())
            if durable:
                os.fsync(stream.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


_MODE: list[int] = []


def new_file_mode() -> int:
    """0o666 less the umask: what ``open()`` gives a new file (read once: reading the umask
    means setting it)."""
    if not _MODE:
        mask = os.umask(0o022)
        os.umask(mask)
        _MODE.append(0o666 & ~mask)
    return _MODE[0]


def render(run: Any, fmt: str) -> str:
    """The run rendered in one format.

    Parameters
    ----------
    run : Run
        The run (live, or read back with ``load``).
    fmt : {"text", "json", "markdown", "html"}
        The format: ``run.to_json()``, ``render_markdown``, ``render_html``, or (for any other
        value) ``render_text``.

    Returns
    -------
    str

    Examples
    --------
    >>> import json
    >>> from gradcheck_kit.report import Entry, Run, render
    >>> run = Run([Entry.skipped("conv2d", "cupy", "float32", "cupy is not installed")], seed=0)
    >>> print(render(run, "text").splitlines()[-1])
    PASSED: 1 skipped in 0.0 s
    >>> json.loads(render(run, "json"))["counts"]["skipped"]
    1
    """
    from .html import render_html
    from .markdown import render_markdown
    from .text import render_text

    if fmt == "json":
        return str(run.to_json())
    if fmt == "markdown":
        return render_markdown(run)
    return render_html(run) if fmt == "html" else render_text(run)


class ReportWriter:
    """Writes a run's reports as it goes, so that a run that is killed leaves what it found.

    ``update`` after each entry, ``finish`` once at the end (streams are written only then).
    Updates spend at most a fifth of the run's time writing: one that comes sooner after the
    last than four times what writing took is left to the next (a run of thousands of entries
    rewrites its reports less often than every entry), and HTML, which draws pictures, is
    rewritten at most every ``HTML_SECONDS``.

    Parameters
    ----------
    outputs : sequence of Output
        Where the reports go (``output`` checks each before the run).
    render : callable, default render
        ``render(run, fmt)``: the text of each output.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gradcheck_kit.report import Entry, ReportWriter, Run, load, output
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     writer = ReportWriter([output(str(Path(folder) / "report.json"), "json")])
    ...     run = Run(state="incomplete", not_run=[{"layer": "conv2d", "backend": "cupy", "dtype": None}])
    ...     writer.update(run)
    ...     print(load(Path(folder) / "report.json").summary())
    ...     run.entries.append(Entry.skipped("conv2d", "cupy", None, "cupy is not installed"))
    ...     run.state, run.not_run = "complete", []
    ...     written = writer.finish(run)
    ...     print(load(written[0].target).summary())
    no entries, 1 not run (incomplete) in 0.0 s
    1 skipped in 0.0 s
    """

    def __init__(self, outputs: Sequence[Output], render: Callable[[Any, str], str] = render) -> None:
        self.outputs, self.render = list(outputs), render
        self.last_html = self.last = self.cost = 0.0
        self.warned = False

    def update(self, run: Any) -> None:
        """Rewrite the regular-file outputs with the run so far, unless it is too soon.

        Streams wait for ``finish``; HTML is left out until ``HTML_SECONDS`` have passed since
        it was last written. An output that cannot be written is warned about once, on stderr,
        and not raised: the final write says it again, and fails the run.

        Parameters
        ----------
        run : Run
            The run so far (its ``state`` incomplete until it ends).
        """
        started = time.monotonic()
        if started - self.last < 4 * self.cost:
            return
        due_html = started - self.last_html >= HTML_SECONDS
        for out in self.outputs:
            if out.streamed or (out.fmt == "html" and not due_html):
                continue
            try:
                out.write(self.render(run, out.fmt))
            except OSError as exc:  # the final write says it again, and fails the run
                self._warn(out, exc)
        self.last = time.monotonic()
        self.cost = self.last - started
        if due_html:
            self.last_html = self.last

    def finish(self, run: Any) -> list[Output]:
        """Write every output, streams included, once the run has ended.

        Each is written durably (``fsync``), whatever the updates skipped.

        Parameters
        ----------
        run : Run
            The finished (or interrupted) run.

        Returns
        -------
        list of Output
            The outputs, all written.

        Raises
        ------
        OSError
            The first output that cannot be written (those after it are not written).
        """
        for out in self.outputs:
            out.write(self.render(run, out.fmt), durable=True)
        return self.outputs

    def _warn(self, out: Output, exc: OSError) -> None:
        if not self.warned:
            print(f"gradcheck-kit: cannot write {out} yet: {exc}", file=sys.stderr)
            self.warned = True
