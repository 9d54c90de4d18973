# tessera-bench: a gRPC load generator for Worker.Generate / Llm.Generate.
add_executable(tessera-bench ${CMAKE_CURRENT_LIST_DIR}/tessera_bench.cc)
target_link_libraries(tessera-bench PRIVATE tessera_proto tessera_common gRPC::grpc++
  absl::flags absl::flags_parse)
