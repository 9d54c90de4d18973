# The router's worker pool: membership, health/load polls, KV-event watch
# streams feeding the prefix index, circuit breakers, placement.
set(_router_pool_dir ${CMAKE_CURRENT_LIST_DIR})
add_library(tessera_router_pool
  ${_router_pool_dir}/task_scheduler.cc
  ${_router_pool_dir}/kv_watch.cc
  ${_router_pool_dir}/worker_monitor.cc
  ${_router_pool_dir}/worker_pool.cc
  ${_router_pool_dir}/lease.cc
  ${_router_pool_dir}/worker_placement.cc
  ${_router_pool_dir}/worker_pool_views.cc
  ${_router_pool_dir}/worker_registration.cc
  ${_router_pool_dir}/worker_cluster_params.cc
  ${_router_pool_dir}/cluster_params.cc
)
target_link_libraries(tessera_router_pool PUBLIC tessera_router_core tessera_api_grpc tessera_proto tessera_common
  tessera_model_text
  gRPC::grpc++ absl::btree absl::flat_hash_map absl::flat_hash_set absl::random_random
  absl::synchronization absl::time absl::status absl::statusor absl::strings absl::cleanup
  Threads::Threads)
