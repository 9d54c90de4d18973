# Scheduler step micro-benchmark (Google Benchmark): Schedule() + Update() per step.
add_executable(scheduler_bench ${CMAKE_CURRENT_LIST_DIR}/scheduler_bench.cc)
target_link_libraries(scheduler_bench PRIVATE tessera_engine_core benchmark::benchmark)

# Engine loop with the worker's metrics on vs off (the cost of recording on the engine thread).
add_executable(engine_loop_bench ${CMAKE_CURRENT_LIST_DIR}/engine_loop_bench.cc)
target_link_libraries(engine_loop_bench PRIVATE tessera_worker_service benchmark::benchmark)
