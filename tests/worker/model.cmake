# Model configuration, tensor-parallel partitioning, safetensors and weight
# sources (worker/model/).
tessera_add_test(model_config_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/model_config_test.cc
  LIBS tessera_weights LABELS unit)
tessera_add_test(dummy_presets_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/dummy_presets_test.cc
  LIBS tessera_weights LABELS unit)
tessera_add_test(partition_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/partition_test.cc
  LIBS tessera_weights LABELS unit)
tessera_add_test(safetensors_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/safetensors_test.cc
  LIBS tessera_weights LABELS unit)
tessera_add_test(weight_source_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/weight_source_test.cc
  LIBS tessera_weights LABELS unit)
tessera_add_test(dummy_weights_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/dummy_weights_test.cc
  LIBS tessera_weights LABELS unit)
