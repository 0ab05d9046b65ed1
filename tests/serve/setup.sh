#!/usr/bin/env bash
# The environment of the Triton server tests (tests/serve): a virtual environment of its own, because
# nvidia-pytriton (which ships `tritonserver` and its Python backend) needs numpy < 2 and the stub serves
# from whatever environment `python3` on PATH is. Usage: tests/serve/setup.sh [VENV] (default .venv-serve),
# then: .venv-serve/bin/pytest tests/serve -m serve -n 0
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${1:-.venv-serve}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet -e '.[serve]' pytest pytest-xdist
"$venv/bin/python" -c "import numpy, onnxruntime, pytriton; assert numpy.__version__ < '2', numpy.__version__"
echo "ready: $venv (numpy $("$venv/bin/python" -c 'import numpy; print(numpy.__version__)'))"
