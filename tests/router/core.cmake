# Router core: circuit breaker, prefix index, placement policies, admission.
set(_router_core_test_dir ${CMAKE_CURRENT_LIST_DIR})
foreach(t circuit_breaker prefix_index policy admission fair_queue tenant_limits tenant_config)
  tessera_add_test(${t}_test SOURCES ${_router_core_test_dir}/${t}_test.cc
    LIBS tessera_router_core LABELS unit TIMEOUT 60)
endforeach()
# Admission across tenants, split from admission_test.cc for size: same binary.
target_sources(admission_test PRIVATE ${_router_core_test_dir}/admission_tenants_test.cc)
