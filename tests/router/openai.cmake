# The OpenAI translation layer (router/openai/): request parsing, response
# building, error bodies, models / tokenize / detokenize, a parse fuzz loop.
set(_router_openai_test_dir ${CMAKE_CURRENT_LIST_DIR})
tessera_add_test(openai_protocol_test
  SOURCES ${_router_openai_test_dir}/openai_protocol_test.cc
          ${_router_openai_test_dir}/openai_request_errors_test.cc
          ${_router_openai_test_dir}/openai_errors_test.cc
          ${_router_openai_test_dir}/openai_response_test.cc
          ${_router_openai_test_dir}/openai_tokenize_test.cc
  LIBS tessera_openai LABELS unit TIMEOUT 120)
