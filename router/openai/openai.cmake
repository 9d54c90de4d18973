# The OpenAI HTTP API's pure translation layer (no networking): request
# bodies -> GenerateRequest, response streams -> OpenAI JSON / SSE, OpenAI
# error bodies, /v1/models, /tokenize, /detokenize.
set(_router_openai_dir ${CMAKE_CURRENT_LIST_DIR})
add_library(tessera_openai
  ${_router_openai_dir}/api_error.cc
  ${_router_openai_dir}/json_fields.cc
  ${_router_openai_dir}/chat_messages.cc
  ${_router_openai_dir}/request.cc
  ${_router_openai_dir}/logprobs_json.cc
  ${_router_openai_dir}/response_builder.cc
  ${_router_openai_dir}/models_tokenize.cc
)
target_link_libraries(tessera_openai PUBLIC tessera_api tessera_model_text tessera_proto
  tessera_common nlohmann_json::nlohmann_json absl::status absl::statusor absl::strings
  absl::str_format absl::flat_hash_map absl::random_random)
