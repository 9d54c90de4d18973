# The worker pool against in-process fake workers (tests/router/fake_worker.h,
# also used by the router service's tests through tessera_router_testing).
set(_router_pool_test_dir ${CMAKE_CURRENT_LIST_DIR})
add_library(tessera_router_testing STATIC ${_router_pool_test_dir}/fake_worker.cc
  ${_router_pool_test_dir}/fake_worker_services.cc)
target_link_libraries(tessera_router_testing PUBLIC tessera_proto tessera_common gRPC::grpc++
  absl::flat_hash_set absl::synchronization absl::status)

tessera_add_test(fake_worker_test SOURCES ${_router_pool_test_dir}/fake_worker_test.cc
  LIBS tessera_router_testing LABELS unit TIMEOUT 60)
tessera_add_test(worker_pool_test SOURCES ${_router_pool_test_dir}/worker_pool_membership_test.cc
  ${_router_pool_test_dir}/worker_pool_health_test.cc ${_router_pool_test_dir}/worker_pool_kv_test.cc
  ${_router_pool_test_dir}/worker_pool_identity_test.cc
  ${_router_pool_test_dir}/worker_pool_cluster_test.cc
  LIBS tessera_router_pool tessera_router_testing LABELS unit TIMEOUT 120)
# A worker reporting its replica stalled (a hung rank) leaves the rotation at once.
tessera_add_test(worker_pool_stall_test SOURCES ${_router_pool_test_dir}/worker_pool_stall_test.cc
  LIBS tessera_router_pool tessera_router_testing LABELS unit TIMEOUT 60)
tessera_add_test(cluster_params_test SOURCES ${_router_pool_test_dir}/cluster_params_test.cc
  LIBS tessera_router_pool LABELS unit TIMEOUT 60)
