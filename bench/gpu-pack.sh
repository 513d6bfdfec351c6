#!/usr/bin/env bash
# Packs what bench/gpu.sh needs on a GPU machine that has no Node.js: this machine's node binary (xz), the built
# project with its runtime node_modules pruned to what runs there (no TypeScript, no other platforms' Dawn
# builds, tfjs packages reduced to their Node bundles and wasm binaries), and Debian's Vulkan loader. The result
# is small enough to travel with a working tree (about 45 MiB).
#   npm ci && npm run build && bash bench/gpu-pack.sh [OUT_DIR]      # default .gpu (git-ignored)
# then, on the GPU machine, from a folder holding data/ (the repo root): bash .gpu/gpu.sh .gpu
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=$(mkdir -p "${1:-$repo/.gpu}" && cd "${1:-$repo/.gpu}" && pwd)
cd "$repo"
[[ -f dist/bench/gpu-train.js ]] || { echo "build first: npm run build" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

node_bin=$(command -v node)
if [[ ! -f $dest/node.xz || $dest/node.xz -ot $node_bin ]]; then
  echo "compressing $node_bin ($(node --version))"
  xz -T0 -9 -c "$node_bin" >"$dest/node.xz.tmp" && mv "$dest/node.xz.tmp" "$dest/node.xz"
fi

mkdir -p "$stage/flow/bench"
cp -r dist bin package.json pipelines schemas "$stage/flow/"
cp bench/unet_torch.py "$stage/flow/bench/"
# Runtime packages only; build and test tooling stays here.
tar -C "$repo" -cf - \
  --exclude='node_modules/typescript' --exclude='node_modules/@esbuild' --exclude='node_modules/esbuild' \
  --exclude='node_modules/tsx' --exclude='node_modules/@types' --exclude='node_modules/fast-check' \
  --exclude='node_modules/pure-rand' --exclude='node_modules/.package-lock.json' \
  --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' \
  --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='node_modules/@tensorflow/*/dist' \
  --exclude='*.d.ts' --exclude='*.map' node_modules | tar -C "$stage/flow" -xf -
# Each tfjs package runs from its Node bundle (package.json "main"); wasm also loads its .wasm binaries.
for pkg in node_modules/@tensorflow/*/; do
  main=$(node -p "require('./${pkg}package.json').main")
  mkdir -p "$stage/flow/$pkg/dist"
  cp "$pkg$main" "$stage/flow/$pkg$main"
  cp "$pkg"dist/*.wasm "$stage/flow/$pkg/dist/" 2>/dev/null || true
done
# The native convolution addon, where it was built here (same CPU architecture there).
if ls native/conv/build/Release/*.node >/dev/null 2>&1; then
  mkdir -p "$stage/flow/native/conv/build/Release"
  cp native/conv/build/Release/*.node "$stage/flow/native/conv/build/Release/"
fi
tar -C "$stage/flow" -cf - . | xz -T0 -6 >"$dest/flow.tar.xz"
cp bench/gpu.sh "$dest/gpu.sh" # the bundle runs without the project's checkout: bash .gpu/gpu.sh .gpu

# Debian's Vulkan loader, for a machine whose image has none (gpu.sh unpacks it only then).
if ! ls "$dest"/libvulkan1_*.deb >/dev/null 2>&1; then
  (cd "$dest" && apt-get download libvulkan1 >/dev/null) || echo "could not download libvulkan1: gpu.sh will need the machine's own loader"
fi
du -ch "$dest"/* | tail -1
