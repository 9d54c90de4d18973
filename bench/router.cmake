# Router core micro-benchmark (Google Benchmark): prefix-index lookups and a
# full prefix-policy placement decision.
add_executable(router_core_bench ${CMAKE_CURRENT_LIST_DIR}/router_core_bench.cc)
target_link_libraries(router_core_bench PRIVATE tessera_router_core benchmark::benchmark)
