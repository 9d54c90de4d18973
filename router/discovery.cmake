# dns:/// worker discovery (--workers dns:///NAME:PORT): re-resolves a name
# (e.g. a Kubernetes headless Service) and syncs the pool's DNS workers.
add_library(tessera_router_discovery STATIC dns_discovery.cc)
target_link_libraries(tessera_router_discovery PUBLIC tessera_common absl::synchronization
  absl::time)
if(TARGET tessera_router_pool)
  target_link_libraries(tessera_router_discovery PUBLIC tessera_router_pool)
else()
  # Until pool.cmake exists: compiles against worker_pool.h only.
  target_link_libraries(tessera_router_discovery PUBLIC tessera_proto gRPC::grpc++)
endif()
