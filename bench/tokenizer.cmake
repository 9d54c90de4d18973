# tokenizer_bench: encode throughput of common/tokenizer (bench/tokenizer_bench.sh
# runs it beside Hugging Face's Rust tokenizers).
add_executable(tokenizer_bench ${CMAKE_CURRENT_LIST_DIR}/tokenizer_bench.cc)
target_link_libraries(tokenizer_bench PRIVATE tessera_common nlohmann_json::nlohmann_json
  absl::flags absl::flags_parse Threads::Threads)
