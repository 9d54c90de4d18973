# Scheduler step micro-benchmark (Google Benchmark): Schedule() + Update() per step.
add_executable(scheduler_bench ${CMAKE_CURRENT_LIST_DIR}/scheduler_bench.cc)
target_link_libraries(scheduler_bench PRIVATE tessera_engine_core benchmark::benchmark)
