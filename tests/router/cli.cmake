# The tessera CLI: argument parsing, output formatting, and every command
# against in-process fake Admin / Llm services (in-process and through the
# built binary as a subprocess).
foreach(t args format watch)
  tessera_add_test(cli_${t}_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_${t}_test.cc
                   LIBS tessera_cli LABELS unit TIMEOUT 60)
endforeach()
tessera_add_test(cli_commands_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_commands_test.cc
                 LIBS tessera_cli LABELS unit TIMEOUT 120)
target_compile_definitions(cli_commands_test PRIVATE TESSERA_CLI_BINARY="$<TARGET_FILE:tessera>")
add_dependencies(cli_commands_test tessera)
