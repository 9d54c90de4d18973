# Sampling parameters, the sampler, and the tensor-parallel communicator.
set(_sampler_tp_dir ${CMAKE_CURRENT_LIST_DIR})
tessera_add_test(sampling_params_test SOURCES ${_sampler_tp_dir}/sampling_params_test.cc
  LIBS tessera_engine_core LABELS unit)
tessera_add_test(sampler_test SOURCES ${_sampler_tp_dir}/sampler_test.cc
  LIBS tessera_sampler LABELS unit)
tessera_add_test(sampler_penalties_test SOURCES ${_sampler_tp_dir}/sampler_penalties_test.cc
  LIBS tessera_sampler LABELS unit)

# One binary (its own main: MPI init/finalize, gtest output from rank 0 only),
# registered three times: 2 ranks (tp_group_mpi_test), 4 ranks
# (tp_group_mpi4_test), and as a plain process (tp_group_test, label unit),
# where MPI runs as a singleton of size 1.
tessera_add_test(tp_group_mpi_test SOURCES ${_sampler_tp_dir}/tp_group_mpi_test.cc
  LIBS tessera_comm LABELS mpi MPI_RANKS 2 TIMEOUT 120)
add_test(NAME tp_group_mpi4_test
  COMMAND ${MPIEXEC_EXECUTABLE} ${TESSERA_MPIRUN_FLAGS} -np 4 $<TARGET_FILE:tp_group_mpi_test>)
set_tests_properties(tp_group_mpi4_test PROPERTIES LABELS mpi TIMEOUT 120)
add_test(NAME tp_group_test COMMAND tp_group_mpi_test)
set_tests_properties(tp_group_test PROPERTIES LABELS unit TIMEOUT 60)
# The Sampler against the CUDA kernel's rule (its host twin); no GPU needed.
tessera_add_test(sampler_rule_test SOURCES ${_sampler_tp_dir}/sampler_rule_test.cc
  LIBS tessera_sampler tessera_kernels LABELS unit)
