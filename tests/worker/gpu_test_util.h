// Helpers for the GPU suites (label gpu): skipping without a CUDA device,
// running an engine to completion, building CUDA replicas. Header-only; for
// tests.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/gpu_required.h"
#include "tests/testing/stories.h"
#include "worker/device/cuda_device.h"
#include "worker/engine/engine.h"
#include "worker/replica.h"

// Skips the test (with the reason) when this binary cannot use a GPU: built
// without the CUDA path, no driver, or no device. Fails instead under
// TESSERA_REQUIRE_GPU=1 (tests/testing/gpu_required.h).
#define TESSERA_REQUIRE_GPU()                                                                     \
  do {                                                                                            \
    if (::tessera::UsableCudaDevices() == 0) {                                                    \
      TESSERA_GPU_TEST_CANNOT_RUN("no usable CUDA device (" << ::tessera::CudaUnavailableReason() \
                                                            << "); this GPU test needs one");     \
    }                                                                                             \
  } while (0)

// TESSERA_REQUIRE_STORIES for GPU tests: a missing model fails under
// TESSERA_REQUIRE_GPU=1 too (a GPU run must carry it).
#define TESSERA_REQUIRE_STORIES_ON_GPU()                                 \
  do {                                                                   \
    if (!::tessera::testing::HaveStories()) {                            \
      TESSERA_GPU_TEST_CANNOT_RUN("stories260K test model not found at " \
                                  << ::tessera::testing::StoriesDir());  \
    }                                                                    \
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
