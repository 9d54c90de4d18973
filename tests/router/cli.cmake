# The tessera CLI: argument parsing, output formatting, and every command
# against in-process fake Admin / Llm services (in-process and through the
# built binary as a subprocess).
foreach(t args format watch)
  tessera_add_test(cli_${t}_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_${t}_test.cc
                   LIBS tessera_cli LABELS unit TIMEOUT 60)
endforeach()
foreach(t commands generate binary)
  tessera_add_test(cli_${t}_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_${t}_test.cc
                   LIBS tessera_cli LABELS unit TIMEOUT 120)
  target_compile_definitions(cli_${t}_test PRIVATE TESSERA_CLI_BINARY="$<TARGET_FILE:tessera>")
  add_dependencies(cli_${t}_test tessera)
endforeach()
