// deploy/gpu-bundle.sh (label integration): it builds a bundle of this CUDA
// build that fits the GPU run's limits — sm_90 only, at most 60 MiB, no CUDA
// library carried, the kernel tests inside — and that bundle works relocated:
// `run-gpu.sh --check-libs` and `--cpu-check` run in a mount namespace where
// the build tree, the CUDA toolkit, the system's Open MPI / PMIx / OpenBLAS
// directories and the system copy of every bundled library are hidden, with
// the CUDA libraries offered only as a Python site-packages/nvidia/*/lib (as
// on the GPU machine). What travels, the .tar.xz, is at most 60 MiB. So a library missing from the
// bundle cannot be found elsewhere and hide; a control run that also hides one bundled library must
// fail. Skips (loudly) in a build without the CUDA path, or where no mount
// namespace can be made.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing/sanitizers.h"
#include "tests/testing/subprocess.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;

// A sanitized build's bundle (deploy/test.sh) is only checked for its relocation: its
// binaries are larger, and deploy/gpu-bundle.sh allows it 128 MiB.
constexpr int64_t kMaxBundleBytes =
    testing::kSanitizerBuild ? int64_t{128} << 20 : int64_t{60} << 20;

class GpuBundleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
#if !TESSERA_HAVE_CUDA
    return;
#else
    char tmpl[] = "/tmp/tessera_gpu_bundle_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = new std::string(tmpl);
    bundle_ = new std::string(*tmp_ + "/bundle");
    const testing::CommandResult r =
        RunCommand(absl::StrCat(TESSERA_SOURCE_DIR, "/deploy/gpu-bundle.sh ", TESSERA_BINARY_DIR,
                                " ", *bundle_, " 2>&1"),
                   600);
    bundle_log_ = new std::string(r.out);
    bundle_ok_ = r.exit_code == 0;
#endif
  }
  static void TearDownTestSuite() {
    if (tmp_ != nullptr) {
      std::error_code ec;
      fs::remove_all(*tmp_, ec);
    }
    delete tmp_;
    delete bundle_;
    delete bundle_log_;
    tmp_ = bundle_ = bundle_log_ = nullptr;
  }
  void SetUp() override {
#if !TESSERA_HAVE_CUDA
    GTEST_SKIP()
        << "*** THIS BUILD HAS NO CUDA PATH: the GPU bundle (deploy/gpu-bundle.sh) is "
           "NOT checked; configure with -DTESSERA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 ***";
#else
    ASSERT_TRUE(bundle_ok_) << "deploy/gpu-bundle.sh failed:\n" << *bundle_log_;
#endif
  }

  // Runs `commands` (bash) as root in a new mount namespace after hiding what
  // the GPU machine will not have; `also_hide` is one more path to hide.
  // Returns the output and exit code of `commands`.
  static testing::CommandResult InHiddenWorld(const std::string& commands,
                                              const std::string& also_hide = "") {
    const std::string script = *tmp_ + "/hide.sh";
    std::ofstream f(script);
    f << "set -e\n"
      << "B=" << *bundle_ << "; T=" << *tmp_ << "; BUILD=" << TESSERA_BINARY_DIR << "\n"
      << R"SH(
# The system's tools, as the checks below run with (not a caller's pyenv etc.).
export PATH=/usr/bin:/bin
mount --make-rprivate /
# The CUDA libraries, offered only as site-packages/nvidia/<pkg>/lib.
n=0
for d in $(ldd "$BUILD/tests/kernels/cuda_ops_test" "$BUILD/tests/worker/gpu_tp_mpi_test" |
           awk '/lib(cudart|cublas|cublasLt|nccl)\.so/ { print $3 }' | xargs -n1 readlink -f |
           xargs -n1 dirname | sort -u); do
  n=$((n + 1)); mkdir -p "$T/site/nvidia/pkg$n/lib"; mount --bind "$d" "$T/site/nvidia/pkg$n/lib"
done
empty="$T/empty"; : > "$empty"
hide_dir() { [ -d "$1" ] && mount -t tmpfs none "$1" || true; }
hide_dir "$BUILD"
hide_dir "$(readlink -f /usr/local/cuda)"
hide_dir /usr/lib/x86_64-linux-gnu/openmpi
hide_dir /usr/lib/x86_64-linux-gnu/pmix2
hide_dir /usr/lib/x86_64-linux-gnu/openblas-openmp
# The system copy of every bundled library, except those the system tools this
# check runs with (bash, python3, coreutils, grep, awk) need themselves.
keep=$(for t in bash python3 grep sed awk sort xargs readlink dirname env mkdir cat tr timeout \
         ls wc du cut head tail; do p=$(command -v $t) && ldd "$p"; done 2>/dev/null |
       awk '/=>/ { print $1 }' | sort -u)
for lib in "$B"/lib/*.so*; do
  name=${lib##*/}
  if printf '%s\n' "$keep" | grep -qx "$name"; then continue; fi
  for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/local/lib /usr/lib; do
    [ -e "$d/$name" ] && mount --bind "$empty" "$(readlink -f "$d/$name")" || true
  done
done
)SH";
    if (!also_hide.empty()) f << "mount --bind \"$empty\" " << also_hide << "\n";
    // A sanitized build's bundle: Open MPI's own leaks are suppressed as in
    // deploy/test.sh (the source tree stays visible); reports go to stderr.
    const std::string sanitizer_env =
        testing::kSanitizerBuild ? absl::StrCat("LSAN_OPTIONS=suppressions=", TESSERA_SOURCE_DIR,
                                                "/tests/sanitizers/lsan.supp:print_suppressions=0 ")
                                 : "";
    f << "set +e\n"
      << "env -i PATH=/usr/bin:/bin HOME=/tmp PYTHONPATH=$T/site " << sanitizer_env << "bash -c '"
      << commands << "'\n";
    f.close();
    const char* unshare = geteuid() == 0 ? "unshare -m" : "unshare -rm";
    return RunCommand(absl::StrCat(unshare, " bash ", script, " 2>&1"), 300);
  }

  static bool NamespacesWork() {
    return RunCommand(absl::StrCat(geteuid() == 0 ? "unshare -m" : "unshare -rm", " true"), 30)
               .exit_code == 0;
  }

  static inline std::string* tmp_ = nullptr;
  static inline std::string* bundle_ = nullptr;
  static inline std::string* bundle_log_ = nullptr;
  [[maybe_unused]] static inline bool bundle_ok_ = false;  // unused without the CUDA path
};

TEST_F(GpuBundleTest, FitsTheGpuRunsLimits) {
  int64_t bytes = 0;
  std::vector<std::string> cuda_libs;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(*bundle_)) {
    if (e.is_symlink() || !e.is_regular_file()) continue;
    bytes += static_cast<int64_t>(e.file_size());
    const std::string name = e.path().filename().string();
    for (const char* prefix : {"libcudart.so", "libcublas", "libnccl.so"}) {
      if (absl::StartsWith(name, prefix)) cuda_libs.push_back(name);
    }
  }
  EXPECT_GT(bytes, 1 << 20) << "suspiciously small";
  // What travels is the archive.
  const std::string archive = *bundle_ + ".tar.xz";
  ASSERT_TRUE(fs::exists(archive));
  EXPECT_LE(static_cast<int64_t>(fs::file_size(archive)), kMaxBundleBytes)
      << archive << " is " << fs::file_size(archive) << " bytes";
  EXPECT_TRUE(cuda_libs.empty()) << "CUDA libraries must come from the GPU machine, found "
                                 << absl::StrJoin(cuda_libs, ", ");
  for (const char* bin :
       {"cuda_tensor_test", "cuda_error_test", "cuda_ops_test", "cuda_attention_test",
        "cuda_sampling_test", "cuda_model_shapes_test", "cuda_graph_test", "gpu_model_test",
        "gpu_decode_graphs_test", "gpu_tp_mpi_test", "gpu_bench", "tessera-generate"}) {
    EXPECT_TRUE(fs::exists(*bundle_ + "/bin/" + bin)) << bin << " is not in the bundle";
  }
  for (const char* f : {"env.sh", "run-gpu.sh", "bench/first_run.sh", "bench/hf_baseline.py",
                        "shared/models/stories260K"}) {
    EXPECT_TRUE(fs::exists(*bundle_ + "/" + f)) << f << " is not in the bundle";
  }
  // sm_90 machine code only (the script checked the build's architectures;
  // this looks at a binary where the toolkit has cuobjdump).
  if (std::string(TESSERA_CUOBJDUMP).empty()) {
    std::printf(
        "note: no cuobjdump in this CUDA toolkit: the cubins' architectures are not "
        "read back (the bundle script checked CMAKE_CUDA_ARCHITECTURES)\n");
    return;
  }
  const testing::CommandResult elf = RunCommand(
      absl::StrCat(TESSERA_CUOBJDUMP, " --list-elf ", *bundle_, "/bin/cuda_ops_test 2>&1"), 60);
  ASSERT_EQ(elf.exit_code, 0) << elf.out;
  int cubins = 0;
  for (absl::string_view line : absl::StrSplit(elf.out, '\n', absl::SkipEmpty())) {
    ++cubins;
    EXPECT_TRUE(absl::StrContains(line, "sm_90")) << line;
  }
  EXPECT_GT(cubins, 0) << elf.out;
}

// The bundle's first_run.sh --dry-run lists every step with its timeout, and
// every binary a step runs is in the bundle.
TEST_F(GpuBundleTest, FirstRunDryRunListsEveryStepWithItsTimeout) {
  const testing::CommandResult r =
      RunCommand(absl::StrCat(*bundle_, "/bench/first_run.sh --dry-run 2>&1"), 60);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* step :
       {"preflight-nvidia-smi", "preflight-torch", "preflight-libs", "preflight-cuda-must-not-skip",
        "kernels-errors", "kernels-ops", "kernels-attention", "kernels-sampling", "kernels-graphs",
        "kernels-model-shapes", "model-graph-vs-eager", "model-decode-graph-buckets",
        "model-stories-f32-reference", "model-qwen3-bf16-vs-cpu", "bench-tessera-8b",
        "bench-transformers-8b", "tp2-host-staged"}) {
    bool listed = false;
    for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (f.size() >= 4 && f[1] == step) {
        listed = true;
        EXPECT_TRUE(absl::EndsWith(f[2], "s") && f[2].size() > 1) << "no timeout: " << line;
      }
    }
    EXPECT_TRUE(listed) << step << " is not listed:\n" << r.out;
  }
  for (absl::string_view word : absl::StrSplit(r.out, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    if (absl::StartsWith(word, *bundle_ + "/bin/")) {
      EXPECT_TRUE(fs::exists(std::string(word))) << word << " is run but not in the bundle";
    }
  }
}

// The script refuses a build for any architecture set but sm_90's.
TEST_F(GpuBundleTest, RefusesABuildForOtherArchitectures) {
  const std::string fake = *tmp_ + "/fake-build";
  fs::create_directories(fake);
  std::ofstream(fake + "/CMakeCache.txt") << "CMAKE_CUDA_ARCHITECTURES:STRING=80;90\n";
  const testing::CommandResult r = RunCommand(
      absl::StrCat(TESSERA_SOURCE_DIR, "/deploy/gpu-bundle.sh ", fake, " ", *tmp_, "/x 2>&1"), 60);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "-DCMAKE_CUDA_ARCHITECTURES=90")) << r.out;
  EXPECT_FALSE(fs::exists(*tmp_ + "/x")) << "a refused bundle left files";
}

TEST_F(GpuBundleTest, ResolvesEveryLibraryWithTheBuildTreeHidden) {
  if (!NamespacesWork()) {
    GTEST_SKIP() << "*** cannot make a mount namespace here (unshare -m): the bundle's "
                    "relocation is NOT checked ***";
  }
  const testing::CommandResult r =
      InHiddenWorld(absl::StrCat("source ", *bundle_, "/env.sh && ", *bundle_,
                                 "/run-gpu.sh --check-libs; echo check-libs-exit=$?"));
  EXPECT_TRUE(absl::StrContains(r.out, "check-libs-exit=0")) << r.out;
  // Every library resolved in the bundle, in the offered site-packages, or is
  // a system one (glibc, libstdc++, ...) — never the build tree or toolkit.
  int resolved_in_bundle = 0, resolved_cuda = 0;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    const size_t arrow = line.find("=> ");
    if (arrow == absl::string_view::npos) continue;
    const absl::string_view path = line.substr(arrow + 3);
    EXPECT_FALSE(absl::StartsWith(path, TESSERA_BINARY_DIR)) << line;
    EXPECT_FALSE(absl::StartsWith(path, "/usr/local/cuda")) << line;
    if (absl::StartsWith(path, *bundle_)) ++resolved_in_bundle;
    if (absl::StartsWith(path, *tmp_ + "/site/nvidia/")) ++resolved_cuda;
  }
  EXPECT_GT(resolved_in_bundle, 0) << r.out;
  EXPECT_GT(resolved_cuda, 0) << "the CUDA libraries did not come from site-packages:\n" << r.out;
}

TEST_F(GpuBundleTest, AMissingBundledLibraryIsCaught) {
  if (!NamespacesWork()) GTEST_SKIP() << "*** no mount namespace: the control is NOT run ***";
  std::string victim;
  for (const fs::directory_entry& e : fs::directory_iterator(*bundle_ + "/lib")) {
    if (absl::StartsWith(e.path().filename().string(), "libprotobuf.so") ||
        absl::StartsWith(e.path().filename().string(), "libabsl_strings.so")) {
      victim = e.path().string();
      break;
    }
  }
  ASSERT_FALSE(victim.empty()) << "the bundle carries neither protobuf nor Abseil";
  const testing::CommandResult r =
      InHiddenWorld(absl::StrCat("source ", *bundle_, "/env.sh && ", *bundle_,
                                 "/run-gpu.sh --check-libs; echo check-libs-exit=$?"),
                    victim);
  EXPECT_FALSE(absl::StrContains(r.out, "check-libs-exit=0"))
      << "hiding " << victim << " went unnoticed:\n"
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "cannot load")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, fs::path(victim).filename().string())) << r.out;
}

TEST_F(GpuBundleTest, RunsItsCpuCheckWithTheBuildTreeHidden) {
  if (!NamespacesWork()) GTEST_SKIP() << "*** no mount namespace: the relocation is NOT run ***";
  const testing::CommandResult r = InHiddenWorld(
      absl::StrCat("cd /tmp && ", *bundle_, "/run-gpu.sh --cpu-check; echo ", "cpu-check-exit=$?"));
  EXPECT_TRUE(absl::StrContains(r.out, "cpu-check-exit=0")) << r.out;
}

}  // namespace
}  // namespace tessera
