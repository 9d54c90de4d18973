# The CUDA path of the worker: device plumbing (label unit: runs everywhere,
# its GPU parts skip), the model and engine on a GPU, and tensor parallelism
# on GPUs (label gpu: each test skips without a CUDA device). All of them
# build with or without the CUDA path.
set(_gpu_dir ${CMAKE_CURRENT_LIST_DIR})
tessera_add_test(gpu_plumbing_test SOURCES ${_gpu_dir}/gpu_plumbing_test.cc
  LIBS tessera_engine LABELS unit TIMEOUT 120)
tessera_add_test(gpu_model_test SOURCES ${_gpu_dir}/gpu_model_test.cc
  LIBS tessera_engine nlohmann_json::nlohmann_json LABELS gpu TIMEOUT 900)
tessera_add_test(gpu_tp_mpi_test SOURCES ${_gpu_dir}/gpu_tp_mpi_test.cc
  LIBS tessera_engine nlohmann_json::nlohmann_json LABELS gpu MPI_RANKS 2 TIMEOUT 600)
# CudaGraph's capture, failure and replay on a GPU (bundled as a kernel test).
tessera_add_test(cuda_graph_test SOURCES ${_gpu_dir}/cuda_graph_test.cc
  LIBS tessera_device LABELS gpu)
# The CUDA executor's host side (graph shapes, staging, the graph cache),
# which needs no GPU.
tessera_add_test(cuda_staging_test SOURCES ${_gpu_dir}/cuda_staging_test.cc
  LIBS tessera_engine LABELS unit)
tessera_add_test(decode_graph_cache_test SOURCES ${_gpu_dir}/decode_graph_cache_test.cc
  LIBS tessera_engine LABELS unit)
# Decode graphs per context bucket and the CPU-sampled rows' gather, through
# the CUDA executor (bundled for the first GPU run).
tessera_add_test(gpu_decode_graphs_test SOURCES ${_gpu_dir}/gpu_decode_graphs_test.cc
  LIBS tessera_engine LABELS gpu TIMEOUT 300)
