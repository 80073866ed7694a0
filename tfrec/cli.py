"""The `tfrec` command line: thin subcommands over the Python API."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    import os

    from tfrec.commands import run

    try:
        return run(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        # `tfrec data describe | head`: the reader left; exit quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
