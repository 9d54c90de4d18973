// Fuzz target: a .safetensors file (its 8-byte header length, the JSON header
// and the data), opened exactly as the worker opens a checkpoint shard
// (SafetensorsFile::Open: open, fstat, mmap). The input becomes the contents
// of an in-memory file (memfd) reopened through /proc/self/fd. Any bytes must
// give an index or an error Status; every tensor of an index that opens lies
// inside the file and holds numel * element-size bytes.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tests/fuzz/fuzz_target.h"
#include "worker/model/safetensors.h"

namespace {

int g_fd = -1;
std::string g_path;

bool WriteAll(int fd, const uint8_t* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_fd = ::memfd_create("safetensors_fuzz", MFD_CLOEXEC);
  if (g_fd < 0) {
    std::fprintf(stderr, "memfd_create: %s\n", std::strerror(errno));
    std::abort();
  }
  g_path = "/proc/self/fd/" + std::to_string(g_fd);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  TESSERA_FUZZ_CHECK(::ftruncate(g_fd, 0) == 0);
  TESSERA_FUZZ_CHECK(WriteAll(g_fd, data, size));
  const absl::StatusOr<std::unique_ptr<tessera::SafetensorsFile>> file =
      tessera::SafetensorsFile::Open(g_path);
  if (!file.ok()) return 0;
  for (const std::string& name : (*file)->Names()) {
    const tessera::SafetensorsFile::Entry* entry = (*file)->Find(name);
    TESSERA_FUZZ_CHECK(entry != nullptr);
    const std::optional<size_t> element = tessera::SafetensorsDTypeSize(entry->dtype_name);
    TESSERA_FUZZ_CHECK(element.has_value());
    size_t numel = 1;
    for (const int64_t d : entry->shape) numel *= static_cast<size_t>(d);
    TESSERA_FUZZ_CHECK(entry->nbytes == numel * *element);
    if (entry->nbytes > 0) {
      const uint8_t* begin = entry->data;
      // The first and last byte are read: ASan does not watch the mapping, but
      // a tensor past the end of the file faults (SIGBUS) there.
      volatile uint8_t first = begin[0];
      volatile uint8_t last = begin[entry->nbytes - 1];
      (void)first;
      (void)last;
    }
  }
  return 0;
}
