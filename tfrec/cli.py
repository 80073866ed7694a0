"""The `tfrec` command line: thin subcommands over the Python API."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    from tfrec.commands import run

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
