# Fails (FATAL_ERROR) when a source under ROUTER_DIR includes "worker/…" or a
# CMake file there links a worker library: the router shares only common/ and
# proto/ with the workers.
#   cmake -DROUTER_DIR=<dir> -P layering_check.cmake
if(NOT ROUTER_DIR)
  message(FATAL_ERROR "set ROUTER_DIR")
endif()
set(violations)
file(GLOB_RECURSE sources "${ROUTER_DIR}/*.cc" "${ROUTER_DIR}/*.h")
foreach(f ${sources})
  file(STRINGS "${f}" hits REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]worker/")
  foreach(h ${hits})
    list(APPEND violations "${f}: ${h}")
  endforeach()
endforeach()
file(GLOB_RECURSE cmake_files "${ROUTER_DIR}/*.cmake" "${ROUTER_DIR}/CMakeLists.txt")
foreach(f ${cmake_files})
  file(STRINGS "${f}" hits
       REGEX "tessera_(engine|engine_core|worker_service|model|weights|comm|device|sampler)([ \t)]|$)")
  foreach(h ${hits})
    list(APPEND violations "${f}: links a worker library: ${h}")
  endforeach()
endforeach()
if(violations)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "router/ must not depend on worker/ (use common/api):\n  ${text}")
endif()
message(STATUS "router layering: ${ROUTER_DIR} includes nothing from worker/")
