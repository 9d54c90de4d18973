# gpu_bench: Tessera on one GPU against the measured copy bandwidth and bf16
# GEMM rate (decode roofline, prefill, offline throughput). Run it through
# bench/gpu/run.sh, which adds the Hugging Face transformers baseline.
if(TESSERA_HAVE_CUDA)
  add_executable(gpu_bench ${CMAKE_CURRENT_LIST_DIR}/gpu/gpu_bench.cc
    ${CMAKE_CURRENT_LIST_DIR}/gpu/gpu_roofs.cc ${CMAKE_CURRENT_LIST_DIR}/gpu/step_plans.cc)
  target_link_libraries(gpu_bench PRIVATE tessera_engine CUDA::cudart CUDA::cublasLt
    nlohmann_json::nlohmann_json absl::flags absl::flags_parse)
  set_target_properties(gpu_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY
    ${CMAKE_CURRENT_BINARY_DIR}/gpu)
endif()
