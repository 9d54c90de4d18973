# The router's gRPC services and the tessera-router binary, in-process over
# real channels against fake workers (tests/router/fake_worker.h).
set(_router_service_test_dir ${CMAKE_CURRENT_LIST_DIR})
foreach(t llm_service llm_service_admission admin_service router_server generate_relay
    relay_continuation memory_trimmer request_log tenants tenant_service)
  tessera_add_test(${t}_test SOURCES ${_router_service_test_dir}/${t}_test.cc
    LIBS tessera_router_service tessera_router_testing LABELS unit TIMEOUT 120)
endforeach()
# router_server_test also starts the binary (the child-process helper of the
# integration tests).
target_link_libraries(router_server_test PRIVATE tessera_integration_testing)
add_dependencies(router_server_test tessera-router)
# Size limits on what clients and workers send, and the router's random request ids.
tessera_add_test(input_limits_test SOURCES ${_router_service_test_dir}/input_limits_test.cc
  LIBS tessera_router_service tessera_router_testing LABELS unit TIMEOUT 120)
# What every gRPC server gets (common/grpc/): INVALID_ARGUMENT for unparsable
# requests, server reflection v1 and v1alpha.
tessera_add_test(grpc_server_setup_test SOURCES ${_router_service_test_dir}/grpc_server_setup_test.cc
  LIBS tessera_router_service tessera_router_testing LABELS unit TIMEOUT 120)
