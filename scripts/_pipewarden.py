"""What every script of this folder starts with: find pipewarden, or say in one line why it
cannot be run, and exit 2 (never a ModuleNotFoundError traceback).

An orchestrator that calls ``python scripts/schema_sentinel.py ...`` with an interpreter where
pipewarden (or one of its dependencies) is not installed gets, on stderr::

    schema_sentinel.py: pipewarden is not installed in this interpreter (/usr/bin/python3):
    pip install pipewarden

From a checkout, the package beside this folder (``../src``) is used when none is installed.
Kept to the syntax of Python 3.6, so that an older interpreter gets the message too.
"""

import os
import sys

NEEDS = (3, 11)


def _fail(script, message):
    sys.stderr.write(f"{script}: {message}\n")
    sys.exit(2)


def load_main(script):
    """``pipewarden.cli.main``, or exit 2 with one line saying what is missing."""
    if sys.version_info < NEEDS:
        _fail(
            script,
            f"pipewarden needs Python {NEEDS[0]}.{NEEDS[1]} or newer; this interpreter "
            f"({sys.executable}) is {sys.version_info[0]}.{sys.version_info[1]}",
        )
    missing = None
    for attempt in (0, 1):
        try:
            from pipewarden.cli import main

            return main
        except ModuleNotFoundError as exc:
            missing = exc.name or "a module"
        src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
        if attempt or missing != "pipewarden" or not os.path.isdir(os.path.join(src, "pipewarden")):
            break
        sys.path.insert(0, src)  # a checkout: the package beside this folder
    if missing.split(".")[0] == "pipewarden":
        _fail(
            script,
            f"pipewarden is not installed in this interpreter ({sys.executable}): "
            "pip install pipewarden",
        )
    _fail(
        script,
        f"{missing.split('.')[0]}, which pipewarden needs, is not installed in this "
        f"interpreter ({sys.executable}): pip install pipewarden",
    )


def run(words):
    """Run ``pipewarden <words> <this script's arguments>`` and exit with its code."""
    script = os.path.basename(sys.argv[0])
    main = load_main(script)
    sys.exit(main(list(words) + sys.argv[1:]))
