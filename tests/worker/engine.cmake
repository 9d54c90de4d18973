tessera_add_test(engine_test SOURCES engine_test.cc LIBS tessera_engine LABELS unit TIMEOUT 600)
tessera_add_test(tp_logits_mpi2_test SOURCES tp_logits_mpi_test.cc LIBS tessera_engine
                 LABELS mpi MPI_RANKS 2)
tessera_add_test(tp_logits_mpi4_test SOURCES tp_logits_mpi_test.cc LIBS tessera_engine
                 LABELS mpi MPI_RANKS 4)
tessera_add_test(generate_tp_test SOURCES generate_tp_test.cc LIBS nlohmann_json::nlohmann_json
                 LABELS mpi TIMEOUT 900)
string(REPLACE ";" " " _mpirun_flags "${TESSERA_MPIRUN_FLAGS}")
target_compile_definitions(generate_tp_test PRIVATE
  TESSERA_MPIEXEC="${MPIEXEC_EXECUTABLE}" TESSERA_MPIRUN_FLAGS_STR="${_mpirun_flags}")
add_dependencies(generate_tp_test tessera-generate)
tessera_add_test(engine_fork_test SOURCES engine_fork_test.cc LIBS tessera_engine LABELS unit
                 TIMEOUT 300)
tessera_add_test(engine_continuation_test SOURCES engine_continuation_test.cc LIBS tessera_engine
                 LABELS unit TIMEOUT 300)
