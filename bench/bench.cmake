# tessera-bench: a load generator for Worker.Generate / Llm.Generate over gRPC
# and for the router's OpenAI HTTP API (arrival processes, workloads, latency
# percentiles, prefix-cache hit rate, disconnect storms).
if(NOT TARGET Boost::headers)
  find_package(Boost 1.74 REQUIRED)
endif()
add_executable(tessera-bench
  ${CMAKE_CURRENT_LIST_DIR}/tessera_bench.cc
  ${CMAKE_CURRENT_LIST_DIR}/bench_options.cc
  ${CMAKE_CURRENT_LIST_DIR}/bench_load.cc
  ${CMAKE_CURRENT_LIST_DIR}/bench_report.cc
  ${CMAKE_CURRENT_LIST_DIR}/grpc_calls.cc
  ${CMAKE_CURRENT_LIST_DIR}/recording.cc
  ${CMAKE_CURRENT_LIST_DIR}/openai_calls.cc)
target_link_libraries(tessera-bench PRIVATE tessera_proto tessera_common tessera_cluster_flags
  gRPC::grpc++
  nlohmann_json::nlohmann_json absl::flags absl::flags_parse absl::status absl::statusor
  absl::str_format absl::synchronization absl::time Boost::headers Threads::Threads)
