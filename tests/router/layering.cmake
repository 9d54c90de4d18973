# router/ includes nothing from worker/ and links no worker library; the
# second test shows the check fails on a file that does.
add_test(NAME router_layering_check
  COMMAND ${CMAKE_COMMAND} -DROUTER_DIR=${PROJECT_SOURCE_DIR}/router
          -P ${CMAKE_CURRENT_LIST_DIR}/layering_check.cmake)
add_test(NAME router_layering_check_detects_violations
  COMMAND ${CMAKE_COMMAND} -DROUTER_DIR=${CMAKE_CURRENT_LIST_DIR}/layering_fixture
          -P ${CMAKE_CURRENT_LIST_DIR}/layering_check.cmake)
set_tests_properties(router_layering_check PROPERTIES LABELS unit TIMEOUT 30)
set_tests_properties(router_layering_check_detects_violations PROPERTIES LABELS unit TIMEOUT 30
  WILL_FAIL TRUE)
