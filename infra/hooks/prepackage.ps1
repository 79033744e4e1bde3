# azd prepackage hook (Windows): compile the app to bytecode so the deploy package carries
# it. Same steps as prepackage.sh; see the comments there.
$ErrorActionPreference = 'Stop'
$python = if ($env:PYTHON) { $env:PYTHON } else { 'python' }
& $python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'
if ($LASTEXITCODE -ne 0) {
  $found = & $python -c 'import platform; print(platform.python_version())'
  throw "prepackage: $python is Python $found, the app runs on 3.11: set PYTHON to a Python 3.11"
}
& $python -m compileall -q -j 0 -f --invalidation-mode checked-hash cloudcart function_app.py
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
