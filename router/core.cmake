# Router core: pure logic, no gRPC — circuit breaker, KV-block prefix index,
# placement policies, admission control.
set(_router_core_dir ${CMAKE_CURRENT_LIST_DIR})
add_library(tessera_router_core
  ${_router_core_dir}/circuit_breaker.cc
  ${_router_core_dir}/prefix_index.cc
  ${_router_core_dir}/policy.cc
  ${_router_core_dir}/fair_queue.cc
  ${_router_core_dir}/admission.cc
  ${_router_core_dir}/tenant_config.cc
  ${_router_core_dir}/tenant_limits.cc
)
target_link_libraries(tessera_router_core PUBLIC tessera_common absl::flat_hash_map
  absl::flat_hash_set absl::node_hash_map absl::inlined_vector absl::btree absl::synchronization absl::time
  absl::status absl::statusor absl::strings nlohmann_json::nlohmann_json Threads::Threads)
