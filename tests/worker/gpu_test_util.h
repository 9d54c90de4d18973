// Helpers for the GPU suites (label gpu): skipping without a CUDA device,
// running an engine to completion, building CUDA replicas. Header-only; for
// tests.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/device/cuda_device.h"
#include "worker/engine/engine.h"
#include "worker/replica.h"

// Skips the test (with the reason) when this binary cannot use a GPU: built
// without the CUDA path, no driver, or no device.
#define TESSERA_REQUIRE_GPU()                                                         \
  do {                                                                                \
    if (::tessera::UsableCudaDevices() == 0) {                                        \
      GTEST_SKIP() << "no usable CUDA device (" << ::tessera::CudaUnavailableReason() \
                   << "); this GPU test needs one";                                   \
    }                                                                                 \
  } while (0)

namespace tessera::testing {

struct FinishedRequest {
  std::vector<int32_t> tokens;
  std::vector<SampleResult> logprobs;
  RequestOutput last;
};

// Steps `engine` until it is idle; every request's tokens and final output.
inline std::map<std::string, FinishedRequest> RunEngine(Engine& engine) {
  std::map<std::string, FinishedRequest> done;
  for (int guard = 0; engine.HasUnfinished(); ++guard) {
    auto outputs = engine.Step();
    EXPECT_TRUE(outputs.ok()) << outputs.status();
    if (!outputs.ok() || guard > 100000) {
      ADD_FAILURE() << "engine did not finish";
      break;
    }
    for (RequestOutput& o : *outputs) {
      FinishedRequest& f = done[o.request_id];
      f.tokens.insert(f.tokens.end(), o.new_tokens.begin(), o.new_tokens.end());
      for (SampleResult& lp : o.logprobs) f.logprobs.push_back(std::move(lp));
      if (o.finished()) f.last = o;
    }
  }
  return done;
}

}  // namespace tessera::testing
