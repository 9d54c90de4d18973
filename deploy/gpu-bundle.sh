#!/usr/bin/env bash
# deploy/gpu-bundle.sh BUILD_DIR OUT_DIR
#
# Makes a relocatable bundle of Tessera's CUDA build for the first run on a
# GPU machine (bench/gpu/first_run.sh): one NVIDIA H100/H200 with the driver
# and, inside Python's site-packages, NVIDIA's pip packages (the CUDA runtime,
# cuBLAS(Lt), NCCL), but none of Tessera's other dependencies (gRPC, Abseil,
# protobuf, Open MPI, OpenBLAS, spdlog/fmt) and no network. What a run there
# carries is at most 64 MiB: the bundle travels as OUT_DIR.tar.xz, which must
# stay within 60 MiB (checked here; the binaries share their CUDA fatbins and
# xz's 64 MiB window folds the copies into one), and the build must target
# sm_90 only (-DCMAKE_CUDA_ARCHITECTURES=90, checked here). There:
#   tar xJf gpu-bundle.tar.xz -C /tmp && /tmp/gpu-bundle/run-gpu.sh --first-run
#
# What goes in OUT_DIR:
#   bin/      what the first run needs, stripped: the kernel tests
#             (cuda_*_test), the GPU tests (gpu_plumbing_test, gpu_model_test,
#             gpu_decode_graphs_test, gpu_tp_mpi_test), the CPU MPI test
#             tp_logits_mpi2_test,
#             gpu_bench and tessera-generate
#   lib/      every shared library they load that the GPU machine cannot be
#             expected to have: all of `ldd`'s answers except glibc, libstdc++ /
#             libgcc_s, the CUDA driver (libcuda, libnvidia-*) and the CUDA
#             libraries (libcudart, libcublas, libcublasLt, libnccl, ...),
#             which are never carried: they come from the machine's
#             site-packages/nvidia/*/lib at run time (env.sh)
#   lib/compat/  this machine's libstdc++ / libgcc_s, used only when the GPU
#             machine's are too old for the binaries (env.sh checks)
#   ompi/     Open MPI's runtime laid out as under its prefix (mpirun =
#             orterun, libmpi, the MCA plugins minus the fabric ones (UCX, OFI,
#             verbs, PSM) and OpenSHMEM's, help files, config, PMIx's plugins),
#             relocated by OPAL_PREFIX / OPAL_SYSCONFDIR in env.sh
#   shared/models/stories260K   the test model (../shared/models of the tree)
#   bench/    first_run.sh, run.sh, hf_baseline.py, README.md (bench/gpu/)
#   env.sh    sets PATH, LD_LIBRARY_PATH (bundle lib/ first, then the CUDA
#             libraries of site-packages/nvidia/*/lib, found with the
#             machine's python3; CUDA_HOME only when Python has none),
#             OPAL_PREFIX and friends, TESSERA_SHARED_DIR, TESSERA_MPIRUN
#   run-gpu.sh  sources env.sh; --check-libs, --cpu-check, --tests, --bench,
#             --first-run (bench/first_run.sh)
# When patchelf is installed the binaries also get RPATH $ORIGIN/../lib;
# without it, env.sh's LD_LIBRARY_PATH does the job.
#
# Local check (no GPU needed): tests/deploy/gpu_bundle_test builds a bundle
# and runs `run-gpu.sh --check-libs` and `--cpu-check` in a mount namespace
# where the build tree, the CUDA toolkit, the system's Open MPI and every
# system copy of a bundled library are hidden.
# The bundle assumes an x86-64 Linux with glibc >= this machine's (Debian 12:
# 2.36) and a driver for CUDA 13 (the toolkit this build used).
set -euo pipefail

usage() { echo "usage: deploy/gpu-bundle.sh BUILD_DIR OUT_DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
build=$(cd "$1" && pwd)
out=$2
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared_models="$src/../shared/models"

bins=(
  tests/kernels/cuda_tensor_test
  tests/kernels/cuda_error_test
  tests/kernels/cuda_ops_test
  tests/kernels/cuda_attention_test
  tests/kernels/cuda_sampling_test
  tests/kernels/cuda_model_shapes_test
  tests/worker/cuda_graph_test
  tests/worker/gpu_plumbing_test
  tests/worker/gpu_model_test
  tests/worker/gpu_decode_graphs_test
  tests/worker/gpu_tp_mpi_test
  tests/worker/tp_logits_mpi2_test
  bench/gpu/gpu_bench
  worker/tessera-generate
)
max_bytes=$((60 * 1024 * 1024))
# A sanitized build (deploy/test.sh's build-asan) is bundled only so that its tests can check
# the relocation; its binaries are larger and never go to a GPU machine.
sanitize=$(sed -n 's/^TESSERA_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt" 2> /dev/null)
if [[ -n "$sanitize" ]]; then
  max_bytes=$((128 * 1024 * 1024))
  echo "gpu-bundle: *** $build is a sanitized build (-fsanitize=$sanitize): this bundle is for" \
    "local checks only, limit 128 MiB; a GPU run needs a Release build's bundle (60 MiB) ***" >&2
fi

# sm_90 only: the bundle's size depends on it, and H100/H200 need no other.
archs=$(sed -n 's/^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=//p' "$build/CMakeCache.txt" 2> /dev/null)
if [[ "$archs" != 90 && "$archs" != 90a && "$archs" != 90-real ]]; then
  echo "gpu-bundle: $build targets CUDA architectures '${archs:-none (no CUDA path?)}';" \
       "the bundle is for H100/H200 only: configure with -DCMAKE_CUDA_ARCHITECTURES=90" >&2
  exit 1
fi
for b in "${bins[@]}"; do
  [[ -x "$build/$b" ]] || {
    echo "gpu-bundle: $build/$b is missing: build it first (a CUDA build:" \
         "ninja -C $build ${b##*/})" >&2
    exit 1
  }
done

# Libraries the GPU machine provides: glibc, the compiler runtime, the CUDA
# driver, and the CUDA libraries (from its Python packages).
cuda_lib='^(libcudart\.so|libcublas\.so|libcublasLt\.so|libnccl\.so|libnvrtc|libnvJitLink|libcurand|libcusparse|libcufft|libcusolver)'
system_lib='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libutil\.so|libmvec\.so|libstdc\+\+\.so|libgcc_s\.so|libcuda\.so|libnvidia-|libcudart\.so|libcublas\.so|libcublasLt\.so|libnccl\.so|libnvrtc|libnvJitLink|libcurand|libcusparse|libcufft|libcusolver)'

rm -rf "$out"
mkdir -p "$out"/{bin,lib/compat,bench,shared/models}
out=$(cd "$out" && pwd)

# Copies the non-system libraries `file` needs into lib/ (once each).
copy_deps() {
  local file=$1 name path
  while read -r name path; do
    [[ -z "$path" || "$path" == "not" ]] && continue
    [[ "$name" =~ $system_lib ]] && continue
    [[ -e "$out/lib/$name" ]] && continue
    cp -L "$path" "$out/lib/$name"
  done < <(ldd "$file" 2>/dev/null | awk '/=>/ { print $1, $3 }')
}

echo "gpu-bundle: binaries"
for b in "${bins[@]}"; do
  cp "$build/$b" "$out/bin/"
  strip --strip-unneeded "$out/bin/${b##*/}" 2>/dev/null || true
  copy_deps "$build/$b"
done

echo "gpu-bundle: Open MPI runtime"
ompi_libdir=$(ompi_info --path libdir --parsable 2>/dev/null | sed -n 's/^path:libdir://p')
ompi_prefix=$(ompi_info --path prefix --parsable 2>/dev/null | sed -n 's/^path:prefix://p')
ompi_pkglib=$(ompi_info --path pkglibdir --parsable 2>/dev/null | sed -n 's/^path:pkglibdir://p')
ompi_pkgdata=$(ompi_info --path pkgdatadir --parsable 2>/dev/null | sed -n 's/^path:pkgdatadir://p')
ompi_sysconf=$(ompi_info --path sysconfdir --parsable 2>/dev/null | sed -n 's/^path:sysconfdir://p')
: "${ompi_prefix:?ompi_info is needed (Open MPI)}"
orterun=$(readlink -f "$(command -v mpirun)")
rel_lib=${ompi_libdir#"$ompi_prefix"/}
rel_pkglib=${ompi_pkglib#"$ompi_prefix"/}
rel_pkgdata=${ompi_pkgdata#"$ompi_prefix"/}
mkdir -p "$out/ompi/bin" "$out/ompi/$rel_lib" "$out/ompi/$rel_pkglib" "$out/ompi/$rel_pkgdata" \
  "$out/ompi/etc"
cp "$orterun" "$out/ompi/bin/orterun"
ln -sf orterun "$out/ompi/bin/mpirun"
ln -sf orterun "$out/ompi/bin/mpiexec"
copy_deps "$orterun"
# The fabric plugins (UCX, OFI, verbs, PSM) and OpenSHMEM's are left out:
# one-node TP runs use shared memory and TCP loopback.
skip_mca='(ucx|ofi|openib|psm|oshmem|atomic_|memheap_|scoll_|spml_|sshmem_)'
for plugin in "$ompi_pkglib"/*.so; do
  base=${plugin##*/}
  [[ "$base" =~ $skip_mca ]] && continue
  cp "$plugin" "$out/ompi/$rel_pkglib/"
  copy_deps "$plugin"
done
cp -r "$ompi_pkgdata"/. "$out/ompi/$rel_pkgdata/"
[[ -d "$ompi_sysconf" ]] && cp -r "$ompi_sysconf"/. "$out/ompi/etc/"
# PMIx (Open MPI 4 uses the system's): its plugins, found via its MCA path.
pmix_lib=$(ldd "$out/lib/libopen-pal.so.40" "$ompi_pkglib"/mca_pmix_*.so 2>/dev/null |
  awk '/libpmix\.so/ { print $3; exit }')
if [[ -n "$pmix_lib" ]]; then
  pmix_plugins="$(dirname "$(readlink -f "$pmix_lib")")/pmix"
  if [[ -d "$pmix_plugins" ]]; then
    mkdir -p "$out/ompi/pmix"
    cp "$pmix_plugins"/*.so "$out/ompi/pmix/" 2>/dev/null || true
    for p in "$out"/ompi/pmix/*.so; do [[ -e "$p" ]] && copy_deps "$p"; done
  fi
fi
# The compiler runtime, for GPU machines whose libstdc++ is older than ours.
for name in libstdc++.so.6 libgcc_s.so.1; do
  path=$(ldd "$build/worker/tessera-generate" | awk -v n="$name" '$1 == n { print $3 }')
  [[ -n "$path" ]] && cp -L "$path" "$out/lib/compat/$name"
done

if command -v patchelf > /dev/null; then
  echo "gpu-bundle: RPATH \$ORIGIN/../lib (patchelf)"
  for f in "$out"/bin/*; do patchelf --set-rpath '$ORIGIN/../lib' "$f"; done
else
  echo "gpu-bundle: patchelf not installed: env.sh sets LD_LIBRARY_PATH instead of an RPATH"
fi

echo "gpu-bundle: model and bench scripts"
if [[ -d "$shared_models/stories260K" ]]; then
  cp -r "$shared_models/stories260K" "$out/shared/models/"
else
  echo "gpu-bundle: warning: $shared_models/stories260K not found; the stories tests will skip" >&2
fi
cp "$src/bench/gpu/first_run.sh" "$src/bench/gpu/run.sh" "$src/bench/gpu/hf_baseline.py" \
  "$src/bench/gpu/README.md" "$out/bench/"

cat > "$out/env.sh" <<'EOF'
# Source me: the environment of a Tessera GPU bundle (deploy/gpu-bundle.sh).
TESSERA_BUNDLE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TESSERA_BUNDLE
export TESSERA_ORIG_LD_LIBRARY_PATH=${TESSERA_ORIG_LD_LIBRARY_PATH-${LD_LIBRARY_PATH:-}}
export TESSERA_SHARED_DIR="$TESSERA_BUNDLE/shared"
export OPAL_PREFIX="$TESSERA_BUNDLE/ompi"
export OPAL_SYSCONFDIR="$TESSERA_BUNDLE/ompi/etc"
export PMIX_MCA_mca_base_component_path="$TESSERA_BUNDLE/ompi/pmix"
# Loopback and shared memory only; root allowed (containers run as root).
export OMPI_MCA_btl=self,vader,tcp
export OMPI_MCA_pml=ob1
export OMPI_MCA_btl_tcp_if_include=lo
export OMPI_MCA_oob_tcp_if_include=lo
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export TESSERA_MPIRUN="$TESSERA_BUNDLE/ompi/bin/mpirun --oversubscribe --bind-to none"
export PATH="$TESSERA_BUNDLE/bin:$TESSERA_BUNDLE/ompi/bin:$PATH"
_tessera_ld="$TESSERA_BUNDLE/lib"
# The CUDA runtime, cuBLAS(Lt) and NCCL are never carried: they come from the
# machine's Python packages (site-packages/nvidia/*/lib, e.g. nvidia/cu13/lib
# and nvidia/nccl/lib, as PyTorch's CUDA 13 wheels install them), found with
# its python3 (PYTHON overrides); only when Python has none, from CUDA_HOME or
# /usr/local/cuda.
_tessera_nv=$(${PYTHON:-python3} - 2>/dev/null <<'PY'
import glob, os
roots = []
try:
    import nvidia
    roots += list(nvidia.__path__)
except Exception:
    pass
try:
    import torch
    roots.append(os.path.join(os.path.dirname(torch.__file__), "lib"))
except Exception:
    pass
dirs = []
for r in roots:
    dirs += sorted(glob.glob(os.path.join(r, "*", "lib"))) + [r]
print(":".join(d for d in dirs if os.path.isdir(d) and glob.glob(os.path.join(d, "*.so*"))))
PY
)
if [[ -n "$_tessera_nv" ]]; then
  _tessera_ld="$_tessera_ld:$_tessera_nv"
else
  for d in ${CUDA_HOME:+"$CUDA_HOME/lib64"} /usr/local/cuda/lib64; do
    [[ -d "$d" ]] && _tessera_ld="$_tessera_ld:$d"
  done
fi
# The bundled libstdc++ only when the machine's lacks what the binaries need.
if LD_LIBRARY_PATH="$_tessera_ld" ldd "$TESSERA_BUNDLE/bin/tessera-generate" 2>&1 |
    grep -q "GLIBCXX\|CXXABI"; then
  _tessera_ld="$_tessera_ld:$TESSERA_BUNDLE/lib/compat"
fi
export LD_LIBRARY_PATH="$_tessera_ld${TESSERA_ORIG_LD_LIBRARY_PATH:+:$TESSERA_ORIG_LD_LIBRARY_PATH}"
unset _tessera_ld _tessera_nv
EOF

cat > "$out/run-gpu.sh" <<'EOF'
#!/usr/bin/env bash
# Runs Tessera's GPU tests, then the GPU benchmark, from this bundle:
#   ./run-gpu.sh --first-run [--dry-run]   the first run (bench/first_run.sh;
#                             logs and figures in $OUT, default ./first-run-out)
#   ./run-gpu.sh              tests + bench (results in ./gpu-bench-results)
#   ./run-gpu.sh --tests      tests only
#   ./run-gpu.sh --bench      bench only
#   ./run-gpu.sh --check-libs where every library of every binary comes from
#   ./run-gpu.sh --cpu-check  the tests that need no GPU (a bundle sanity check)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC1091
source "$here/env.sh"
mode=${1:-all}
read -r -a mpirun <<< "$TESSERA_MPIRUN"

check_libs() {  # every binary and Open MPI plugin must load
  local bad=0 f out
  for f in "$here"/bin/* "$here"/ompi/bin/orterun; do
    if ! out=$(ldd "$f" 2>&1) || grep -qE "not found|error while loading|too short" <<< "$out"; then
      echo "run-gpu: $f cannot load:"
      grep -E "not found|error while loading|too short" <<< "$out"
      bad=1
    fi
  done
  if [[ $bad == 1 ]]; then
    echo "run-gpu: missing libraries. The CUDA 13 runtime, cuBLAS(Lt) and NCCL come from the"
    echo "machine: install torch with CUDA 13 wheels (nvidia-*-cu13) or set CUDA_HOME."
  fi
  return $bad
}

failures=0
run() {  # name, command...
  echo; echo "== $1"; shift
  if ! "$@"; then echo "run-gpu: FAILED: $*"; failures=$((failures + 1)); fi
}

case "$mode" in
  --check-libs)
    for f in "$here"/bin/*; do echo "== ${f##*/}"; ldd "$f"; done
    check_libs; exit $? ;;
  --first-run)
    shift
    exec "$here/bench/first_run.sh" "$here" "$@" ;;
  --cpu-check)
    check_libs || exit 1
    run "gpu_plumbing_test (CPU parts)" "$here/bin/gpu_plumbing_test"
    run "tp_logits_mpi2_test under the bundled mpirun" "${mpirun[@]}" -np 2 \
      "$here/bin/tp_logits_mpi2_test"
    run "tessera-generate TP=2 on the CPU (stories260K)" "${mpirun[@]}" -np 2 \
      "$here/bin/tessera-generate" --device cpu --model "$TESSERA_SHARED_DIR/models/stories260K" \
      --prompt-ids "1 300 301" --max-tokens 8 --json --threads 1 --num-kv-blocks 64 \
      --log-level warn
    echo; echo "run-gpu: $failures failure(s)"; exit $((failures > 0)) ;;
esac

check_libs || exit 1
nvidia-smi -L 2>/dev/null || echo "run-gpu: nvidia-smi not found"
if [[ "$mode" == all || "$mode" == --tests ]]; then
  export TESSERA_REQUIRE_GPU=1  # a GPU test that skips here fails
  for t in "$here"/bin/cuda_*_test; do run "${t##*/}" "$t"; done
  run gpu_plumbing_test "$here/bin/gpu_plumbing_test"
  run gpu_model_test "$here/bin/gpu_model_test"
  run gpu_decode_graphs_test "$here/bin/gpu_decode_graphs_test"
  run "gpu_tp_mpi_test (2 ranks)" "${mpirun[@]}" -np 2 "$here/bin/gpu_tp_mpi_test"
fi
if [[ "$mode" == all || "$mode" == --bench ]]; then
  run "bench/run.sh" "$here/bench/run.sh" "$here" "${BENCH_OUT:-$PWD/gpu-bench-results}"
fi
echo; echo "run-gpu: $failures failure(s)"
exit $((failures > 0))
EOF
chmod +x "$out/run-gpu.sh" "$out/bench/run.sh" "$out/bench/hf_baseline.py"

# Every library of every binary must now resolve inside the bundle (or be a
# system one): a check that does not depend on what this machine has.
missing=0
for f in "$out"/bin/* "$out"/ompi/bin/orterun "$out/ompi/$rel_pkglib"/*.so; do
  while read -r name path; do
    [[ "$name" =~ $system_lib ]] && continue
    [[ -e "$out/lib/$name" ]] || { echo "gpu-bundle: ${f##*/} needs $name ($path), not bundled" >&2; missing=1; }
  done < <(ldd "$f" 2>/dev/null | awk '/=>/ { print $1, $3 }')
done
[[ $missing == 0 ]] || exit 1

# The CUDA libraries are the machine's, never the bundle's.
carried_cuda=$(find "$out" -type f -printf '%f\n' | grep -E "$cuda_lib" || true)
if [[ -n "$carried_cuda" ]]; then
  echo "gpu-bundle: the bundle must not carry CUDA libraries, found: $carried_cuda" >&2
  exit 1
fi
bytes=$(du -sb "$out" | cut -f1)
echo "gpu-bundle: $out ($((bytes / 1024 / 1024)) MiB; $(ls "$out/lib" | wc -l) libraries)"
# xz's fast preset with a 64 MiB window: the window, not the preset, is what
# folds the binaries' identical fatbins into one copy (~15 MiB in all).
echo "gpu-bundle: compressing (xz, 64 MiB window)"
archive="$out.tar.xz"
tar -C "$(dirname "$out")" -cf - "$(basename "$out")" |
  xz --lzma2=preset=1,dict=64MiB -T1 > "$archive"
archive_bytes=$(stat -c %s "$archive")
echo "gpu-bundle: $archive ($((archive_bytes / 1024 / 1024)) MiB of at most" \
  "$((max_bytes / 1024 / 1024)) MiB)"
if ((archive_bytes > max_bytes)); then
  echo "gpu-bundle: $archive is $archive_bytes bytes, over the limit of $max_bytes bytes:" \
       "a GPU run carries at most 64 MiB. The largest files:" >&2
  du -ab "$out" | sort -n | tail -15 >&2
  exit 1
fi
