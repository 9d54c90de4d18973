# The router's gRPC and HTTP sides: the Generate relay (admission, placement, failover),
# tessera.v1.Llm / Registry / Admin, bearer-token auth, the in-process router
# (RouterServer), the OpenAI HTTP API glue (openai/http_api.cc), and the
# tessera-router binary.
set(_router_service_dir ${CMAKE_CURRENT_LIST_DIR})
add_library(tessera_router_service
  ${_router_service_dir}/auth.cc
  ${_router_service_dir}/tenants.cc
  ${_router_service_dir}/retry_policy.cc
  ${_router_service_dir}/generate_relay.cc
  ${_router_service_dir}/continuation.cc
  ${_router_service_dir}/relay_streaming.cc
  ${_router_service_dir}/request_log.cc
  ${_router_service_dir}/router_metrics.cc
  ${_router_service_dir}/request_intake.cc
  ${_router_service_dir}/llm_service.cc
  ${_router_service_dir}/registry_service.cc
  ${_router_service_dir}/admin_service.cc
  ${_router_service_dir}/router_server.cc
  ${_router_service_dir}/memory_trimmer.cc
  ${_router_service_dir}/openai/http_api.cc
)
target_link_libraries(tessera_router_service PUBLIC tessera_metrics tessera_http tessera_openai tessera_router_pool tessera_router_discovery
  tessera_router_core tessera_api_grpc tessera_proto tessera_common tessera_grpc_server gRPC::grpc++
  gRPC::grpc++_reflection absl::random_random absl::synchronization absl::time)

target_compile_definitions(tessera_router_service PRIVATE TESSERA_VERSION="${PROJECT_VERSION}")

add_executable(tessera-router ${_router_service_dir}/main.cc ${_router_service_dir}/flags.cc
  ${_router_service_dir}/pool_flags.cc)
target_link_libraries(tessera-router PRIVATE tessera_router_service tessera_cluster_flags absl::flags
  absl::flags_parse)
