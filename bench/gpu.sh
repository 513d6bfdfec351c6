#!/usr/bin/env bash
# The whole GPU check in one call, on a GPU machine that may have no Node.js and no Vulkan loader:
#   1. the webgpu kernel conformance tests (every kernel of the 2D/3D U-Nets and losses against cpu) and the
#      exact-resume / checkpoint-portability tests;
#   2. U-Net training and inference speed on webgpu (bench/gpu-train.ts) beside PyTorch on the same GPU
#      (bench/unet_torch.py, the same network, with TF32 on as PyTorch's default and off as a strict fp32 peer),
#      all in this run (and optionally flow's wasm figure on 2 cores of that machine);
#   3. pipelines/carvana.yaml on webgpu at 256 px;
# then prints one table (bench/gpu-table.ts). Prepare the bundle it runs from with `bash bench/gpu-pack.sh` on a
# machine with Node and the project built; it lands in .gpu/ (git-ignored), which the run carries.
#
#   bash bench/gpu.sh [BUNDLE_DIR]        # default .gpu; results also go to $OUT (or ./gpu-out) when set
# Environment: GPU_SIZES (128,256,512), GPU_BATCHES (8,16), GPU_STEPS (10), GPU_EPOCHS (40),
#   GPU_PARTS (bench,tests,pipeline; add cpu for flow on 2 cores of that machine, else give GPU_CPU_FIGURE=FILE,
#   the cpu2.json gpu-train.ts wrote on the 2-core machine), GPU_BACKEND (webgpu; wasm makes a CPU-only dry run).
# Each part has its own time limit, so one that hangs leaves the others' results.
set -uo pipefail
bundle=$(cd "${1:-.gpu}" && pwd)
repo=$(pwd)
out=${OUT:-$repo/gpu-out}
mkdir -p "$out"
work=${GPU_WORK:-/tmp/flow-gpu}
sizes=${GPU_SIZES:-128,256,512}
batches=${GPU_BATCHES:-8,16}
steps=${GPU_STEPS:-10}
epochs=${GPU_EPOCHS:-40}
parts=${GPU_PARTS:-bench,tests,pipeline}
backend=${GPU_BACKEND:-webgpu}
has() { [[ ",$parts," == *",$1,"* ]]; }
log() { printf '\n== %s (%s)\n' "$*" "$(date +%T)"; }

log "unpacking $bundle into $work"
rm -rf "$work" && mkdir -p "$work"
if ! command -v node >/dev/null 2>&1; then
  xz -dc "$bundle/node.xz" >"$work/node" && chmod +x "$work/node"
  export PATH="$work:$PATH"
fi
tar -xJf "$bundle/flow.tar.xz" -C "$work" || exit 1
[[ -d "$work/data" ]] || cp -r "$repo/data" "$work/data"
node --version

# Dawn reaches the GPU through Vulkan: the loader (libvulkan.so.1) and the vendor's ICD must be found.
if [[ $backend == webgpu ]] && ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  log "no Vulkan loader on this machine: unpacking the carried one"
  for deb in "$bundle"/*.deb; do dpkg -x "$deb" /; done
  ldconfig
fi
if [[ -z "${VK_DRIVER_FILES:-}" ]]; then
  for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
    if [[ -f $icd ]]; then export VK_DRIVER_FILES=$icd; break; fi
  done
fi
[[ -d /usr/local/nvidia/lib64 ]] && export LD_LIBRARY_PATH="/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}"
echo "Vulkan ICD: ${VK_DRIVER_FILES:-none found}"
nvidia-smi -L 2>/dev/null || true

cd "$work"
if [[ $backend == webgpu ]]; then
  log "WebGPU adapter"
  timeout 60 node -e "import('./dist/lib/tf/webgpu.js').then((m) => m.probeWebGpu()).then((f) => console.log(JSON.stringify(f)), (e) => { console.log('no adapter:', e.message); process.exit(1); })" ||
    { ls -la /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>&1; ldconfig -p | grep -E 'vulkan|nvidia' | head; }
fi
if has bench; then
  log "flow training speed on $backend, beside PyTorch on the same GPU"
  torch=()
  if command -v python3 >/dev/null && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    torch=(--torch python3)
  else
    echo "no PyTorch with CUDA here: the PyTorch columns stay empty"
  fi
  timeout 420 node dist/bench/gpu-train.js --backend "$backend" --sizes "$sizes" --batches "$batches" --steps "$steps" "${torch[@]}" --json "$out/flow.json" 2>&1 | tail -20
fi
if has tests; then
  log "webgpu conformance and resume tests"
  timeout 200 node --test --test-reporter=tap dist/test/tf/webgpu-kernels.test.js dist/test/train/resume-backends.test.js 2>&1 | tee "$out/tests.tap" |
    grep -E '^(not ok|ok|# (tests|pass|fail|skipped|webgpu))|error:|relative error' | head -80
fi
if has cpu; then
  log "flow on 2 CPU cores of this machine (wasm, 256 px)"
  timeout 120 taskset -c 0,1 node dist/bench/gpu-train.js --backend wasm --sizes 256 --batches 8 --steps 3 --warmup 1 --profile-size 0 --json "$out/cpu2.json" 2>&1 | tail -3
elif [[ -n ${GPU_CPU_FIGURE:-} ]]; then
  cp "$repo/$GPU_CPU_FIGURE" "$out/cpu2.json" 2>/dev/null || cp "$GPU_CPU_FIGURE" "$out/cpu2.json"
fi
if has pipeline; then
  log "pipelines/carvana.yaml on $backend at 256 px, $epochs epochs"
  start=$(date +%s)
  timeout 300 node bin/flow.js run pipelines/carvana.yaml --cache "$work/cache" --runs "$work/runs" \
    --set backend="$backend" --set 'train.input_size=[256, 256]' --set train.epochs="$epochs" 2>&1 | tee "$out/pipeline.log" | tail -30
  echo "pipeline wall time: $(($(date +%s) - start)) s" | tee -a "$out/pipeline.log"
  run=$(ls -d "$work"/runs/carvana/* | tail -1)
  cp "$run/metrics.json" "$out/pipeline-metrics.json" 2>/dev/null
  cp "$run/env.json" "$out/pipeline-env.json" 2>/dev/null
fi
log "table"
node dist/bench/gpu-table.js "$out"
