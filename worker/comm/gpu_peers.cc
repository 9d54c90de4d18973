#include "worker/comm/gpu_peers.h"

#include <cstdint>

#include "common/status_macros.h"
#include "worker/device/cuda_device.h"

namespace tessera {

absl::StatusOr<std::vector<std::string>> GpuUuidsOfRanks(Communicator& comm) {
  ASSIGN_OR_RETURN(const int device, CurrentCudaDevice());
  ASSIGN_OR_RETURN(const CudaDeviceInfo info, GetCudaDeviceInfo(device));
  // 32 hex digits as 4 int32 words of 8 digits each (exact in 32 bits).
  std::vector<int32_t> words(4);
  for (int w = 0; w < 4; ++w) {
    uint32_t v = 0;
    for (int d = 0; d < 8; ++d) {
      const char c = info.uuid[w * 8 + d];
      v = v * 16 + static_cast<uint32_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    words[w] = static_cast<int32_t>(v);
  }
  const Tensor mine = Tensor::FromInts(words, {4});
  Tensor all;
  RETURN_IF_ERROR(comm.AllGather(mine, all));
  std::vector<std::string> uuids(comm.size());
  static constexpr char kHex[] = "0123456789abcdef";
  for (int r = 0; r < comm.size(); ++r) {
    for (int w = 0; w < 4; ++w) {
      const auto v = static_cast<uint32_t>(all.data_as<int32_t>()[r * 4 + w]);
      for (int d = 7; d >= 0; --d) uuids[r].push_back(kHex[(v >> (4 * d)) & 15]);
    }
  }
  return uuids;
}

absl::StatusOr<int> RanksOnThisGpu(Communicator& comm) {
  ASSIGN_OR_RETURN(const std::vector<std::string> uuids, GpuUuidsOfRanks(comm));
  int same = 0;
  for (const std::string& u : uuids) same += u == uuids[comm.rank()] ? 1 : 0;
  return same;
}

}  // namespace tessera
