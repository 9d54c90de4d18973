# Engine core bookkeeping: sequence, block manager, scheduler (no tensors, no threads).
set(_engine_core_dir ${CMAKE_CURRENT_LIST_DIR})
tessera_add_test(sequence_test SOURCES ${_engine_core_dir}/sequence_test.cc
  LIBS tessera_engine_core LABELS unit)
tessera_add_test(block_manager_test SOURCES ${_engine_core_dir}/block_manager_test.cc
  LIBS tessera_engine_core LABELS unit)
tessera_add_test(scheduler_test SOURCES ${_engine_core_dir}/scheduler_test.cc
  LIBS tessera_engine_core LABELS unit)
tessera_add_test(scheduler_preemption_test
  SOURCES ${_engine_core_dir}/scheduler_preemption_test.cc LIBS tessera_engine_core LABELS unit)
tessera_add_test(scheduler_soak_test SOURCES ${_engine_core_dir}/scheduler_soak_test.cc
  LIBS tessera_engine_core LABELS unit TIMEOUT 120)
tessera_add_test(block_manager_fork_test SOURCES ${_engine_core_dir}/block_manager_fork_test.cc
  LIBS tessera_engine_core LABELS unit)
tessera_add_test(scheduler_fork_test SOURCES ${_engine_core_dir}/scheduler_fork_test.cc
  LIBS tessera_engine_core LABELS unit)
