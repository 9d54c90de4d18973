# tessera-bench: a gRPC load generator for Worker.Generate / Llm.Generate
# (arrival processes, workloads, latency percentiles, prefix-cache hit rate).
add_executable(tessera-bench ${CMAKE_CURRENT_LIST_DIR}/tessera_bench.cc)
target_link_libraries(tessera-bench PRIVATE tessera_proto tessera_common gRPC::grpc++
  nlohmann_json::nlohmann_json absl::flags absl::flags_parse absl::status absl::statusor
  absl::str_format absl::synchronization absl::time)
