#!/usr/bin/env bash
# GPU check: `cnnc bench` of ResNet-50 and EfficientNet-B0 on ONNX Runtime's CUDA provider, with and without
# I/O binding, in float32 and (when `cnnc compile --dtype` exists) float16, at batch 1, 8 and 64, and their
# outputs against the CPU provider (what issue 17 asks of the first GPU lent).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # from anywhere; the models are written to OUT_DIR
#
# Installs nothing (the GPU machines have no internet): it needs python3 (or $PYTHON) with cnnc's
# dependencies, an onnxruntime build that has the CUDA provider (onnxruntime-gpu), and CUDA + cuDNN 9
# libraries the loader finds, or as nvidia-* pip packages, which onnxruntime.preload_dlls() loads.
# cnnc runs from this source tree (no install needed). Environment: PYTHON, NETS (default "resnet50
# efficientnet_b0"), BATCHES (default 1,8,64), BENCH_SECONDS (default 3 per batch size); PROVIDER=cpu runs
# the same steps on the CPU provider, to try the script where there is no GPU (NETS=lenet5 for speed);
# PEERS=DIR benches DIR/NET.onnx too where it exists (the same network exported by torch.onnx.export on a
# machine that has torch, carried over: the GPU machines have none), side by side with cnnc's.
# Exit status: 0 every check passed; 1 an output differs from the CPU's beyond tolerance or a step failed;
# 2 it cannot run here (missing Python packages, no CUDA provider, no usable GPU).
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
OUT=${1:-$(mktemp -d -t cnnc-gpu-check-XXXXXX)}
NETS=${NETS:-"resnet50 efficientnet_b0"}
BATCHES=${BATCHES:-1,8,64}
BENCH_SECONDS=${BENCH_SECONDS:-3}
PROVIDER=${PROVIDER:-cuda}
mkdir -p "$OUT" || { echo "gpu_check: cannot create $OUT" >&2; exit 2; }
failures=()

say() { printf '\n== %s\n' "$*"; }

# cnnc in a process that first preloads the CUDA/cuDNN libraries (quietly: a missing optional library
# prints a line, and `--json` output must stay clean); the preload only helps the process that calls it.
cnnc_gpu() {
    "$PY" -c '
import contextlib, io, sys
import onnxruntime
if hasattr(onnxruntime, "preload_dlls"):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            onnxruntime.preload_dlls()
        except Exception:
            pass
from cnnc.cli import main
sys.exit(main(sys.argv[1:]))' "$@"
}

say "machine"
date -u +"%Y-%m-%d %H:%M UTC"; uname -srm
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
else
    echo "nvidia-smi: not found"
fi
"$PY" --version || { echo "gpu_check: no Python at '$PY' (set PYTHON)" >&2; exit 2; }

say "Python packages"
if ! "$PY" - <<'EOF'
import importlib, sys
missing = []
for module in ["numpy", "onnx", "yaml", "pydantic", "lark", "onnxruntime"]:
    try:
        m = importlib.import_module(module)
        print(f"{module} {getattr(m, '__version__', '')}")
    except ImportError:
        missing.append(module)
if missing:
    print(f"gpu_check: missing Python packages: {', '.join(missing)} (this script installs nothing; the "
          f"device has no internet)", file=sys.stderr)
    sys.exit(2)
EOF
then exit 2; fi

say "onnxruntime and CUDA"
"$PY" - "$PROVIDER" <<'EOF'
import sys
import onnxruntime as ort
print("onnxruntime", ort.__version__, "device:", ort.get_device())
print("available providers:", ort.get_available_providers())
if hasattr(ort, "preload_dlls"):
    print("preload_dlls():")
    try:
        ort.preload_dlls()
        print("  returned (lines above, if any, name the libraries it could not load)")
    except Exception as e:
        print(f"  failed: {type(e).__name__}: {e}")
else:
    print("preload_dlls: not in this onnxruntime (older than 1.21)")
if "CUDAExecutionProvider" not in ort.get_available_providers() and sys.argv[1] == "cuda":
    print("gpu_check: this onnxruntime has no CUDAExecutionProvider (CPU-only build); the check needs "
          "onnxruntime-gpu", file=sys.stderr)
    sys.exit(2)
EOF
[ $? -eq 0 ] || exit 2
if ! probe=$(cnnc_gpu run lenet5 --provider "$PROVIDER" 2>&1); then
    echo "$probe"
    echo "gpu_check: CUDA is unavailable: a session on CUDAExecutionProvider does not initialise (no GPU" \
         "visible, or the CUDA/cuDNN libraries this onnxruntime needs are missing); see the lines above" >&2
    exit 2
fi
echo "$probe" | head -1

has_fp16=0
if "$PY" -m cnnc compile --help 2>/dev/null | grep -q -- '--dtype'; then has_fp16=1; fi

# compare MODEL REFERENCE TOLERANCE LABEL: MODEL on $PROVIDER against REFERENCE (float32) on the CPU, same
# input; logits (the Softmax input) compared relative to their largest magnitude, plus top-1 agreement.
compare() {
    "$PY" - "$PROVIDER" "$@" <<'EOF'
import sys
import numpy as np
from cnnc.runtime import Session
from cnnc.runtime.bench import with_logits

provider, model, reference, tolerance, label = sys.argv[1:4] + [float(sys.argv[4]), sys.argv[5]]
cuda = Session(with_logits(model).SerializeToString(), provider)
cpu = Session(with_logits(reference).SerializeToString(), "cpu")
shape = [4] + list(cpu.input_shape[1:])
x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
dtype = np.float16 if cuda.input.type == "tensor(float16)" else np.float32
got = [np.asarray(v, np.float32) for v in cuda.run_all(x.astype(dtype)).values()]
want = list(cpu.run_all(x).values())
y, ref = got[-1], want[-1]  # the logits when the model ends in a Softmax, else the output
finite = bool(np.isfinite(y).all())
error = float(np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-12)) if finite else float("inf")
top1 = float(np.mean(y.argmax(-1) == ref.argmax(-1))) if y.ndim == 2 else float("nan")
ok = finite and error <= tolerance
print(f"{label}: {provider} vs cpu on {shape}: max |diff| / max |ref| = {error:.2e} (tolerance {tolerance:g}), "
      f"top-1 agreement {100 * top1:.0f}%{'' if finite else ', NON-FINITE values'}: {'ok' if ok else 'MISMATCH'}")
sys.exit(0 if ok else 1)
EOF
}

# `cnnc bench` of MODEL with the inputs and outputs bound on the device (--io-binding), then fed from and
# read back to host memory each run: what a server without binding pays for the copies.
bench() {
    for binding in --io-binding ""; do
        if [ -n "$binding" ]; then echo "-- I/O binding: input and output on the device"
        else echo "-- no I/O binding: input and output copied from and to host memory each run"; fi
        cnnc_gpu bench "$1" --provider "$PROVIDER" $binding --batch "$BATCHES" --seconds "$BENCH_SECONDS" \
            || failures+=("$2: bench ${binding:-without binding}")
    done
}

for net in $NETS; do
    fp32="$OUT/$net.onnx"
    say "$net float32"
    if ! "$PY" -m cnnc compile "$net" -o "$fp32"; then failures+=("$net: compile"); continue; fi
    bench "$fp32" "$net float32"
    if [ -n "${PEERS:-}" ] && [ -f "$PEERS/$net.onnx" ]; then
        say "$net float32, the peer's export ($PEERS/$net.onnx)"
        bench "$PEERS/$net.onnx" "$net peer float32"
    fi
    # convolutions may run in TF32 on CUDA (onnxruntime's default on Ampere and newer): 1e-2, not 1e-5
    compare "$fp32" "$fp32" 1e-2 "$net float32" || failures+=("$net float32: outputs")

    say "$net float16"
    if [ "$has_fp16" -eq 0 ]; then
        echo "skipped: this cnnc has no \`cnnc compile --dtype\`"
        continue
    fi
    fp16="$OUT/${net}_fp16.onnx"
    if ! "$PY" -m cnnc compile "$net" --dtype float16 -o "$fp16"; then failures+=("$net: compile --dtype float16"); continue; fi
    bench "$fp16" "$net float16"
    compare "$fp16" "$fp32" 5e-2 "$net float16 vs float32 reference" || failures+=("$net float16: outputs")
done

say "result"
echo "models in $OUT"
if [ ${#failures[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${failures[@]}"
    exit 1
fi
echo "all checks passed"
