#!/bin/sh
# azd prepackage hook: compile the app to bytecode so the deploy package carries it.
# A Flex Consumption app runs from its package, read-only, so Python cannot write .pyc
# there and would compile every module of the app on every cold start. .funcignore keeps
# cloudcart/**/__pycache__/*.cpython-311.pyc and __pycache__/function_app.cpython-311.pyc.
# .pyc files are specific to the Python version, so this must be the deploy's Python 3.11
# (functionapp.bicep); set PYTHON to point at one if `python3` is another version.
# checked-hash: the files carry the source's hash rather than its modification time, which
# zipping and mounting the package do not keep exactly; -f rewrites every file.
set -eu
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "prepackage: $PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'), the app runs on 3.11: set PYTHON to a Python 3.11" >&2
  exit 1
fi
"$PYTHON" -m compileall -q -j 0 -f --invalidation-mode checked-hash cloudcart function_app.py
