# dns:/// discovery against a WorkerPool of in-process fake workers, with a
# scripted resolver (no DNS needed).
tessera_add_test(dns_discovery_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/dns_discovery_test.cc
  LIBS tessera_router_discovery tessera_router_testing LABELS unit TIMEOUT 60)
