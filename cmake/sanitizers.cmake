# Sanitizer and fuzzing instrumentation for every C/C++ target of the build.
#
#   -DTESSERA_SANITIZE=address,undefined   AddressSanitizer + UndefinedBehaviorSanitizer
#                                          (deploy/test.sh's build-asan; any -fsanitize= list)
#   -DTESSERA_FUZZ=ON                      libFuzzer targets in tests/fuzz (clang only); the
#                                          libraries get coverage instrumentation
#                                          (-fsanitize=fuzzer-no-link)
#
# Every finding aborts the process (-fno-sanitize-recover=all), so a test that
# triggers one fails. Only C and C++ are instrumented: with CUDA on, the .cu
# kernels (nvcc) are not, and the executables (linked by the C++ compiler)
# get the sanitizer runtimes. A sanitized process that really uses a GPU needs
# ASAN_OPTIONS=protect_shadow_gap=0 (the driver maps memory in ASan's gap).
set(TESSERA_SANITIZE "" CACHE STRING
    "Comma-separated -fsanitize= list for all C/C++ code (e.g. address,undefined); empty: none")
option(TESSERA_FUZZ "Build the libFuzzer targets in tests/fuzz (clang only)" OFF)

set(_tessera_sanitize_list "${TESSERA_SANITIZE}")
if(TESSERA_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TESSERA_FUZZ=ON needs clang (libFuzzer); configure with "
                        "-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++")
  endif()
  if(_tessera_sanitize_list)
    string(APPEND _tessera_sanitize_list ",fuzzer-no-link")
  else()
    set(_tessera_sanitize_list "fuzzer-no-link")
  endif()
endif()

if(_tessera_sanitize_list)
  if(TESSERA_FUZZ AND TESSERA_HAVE_CUDA)
    message(FATAL_ERROR "TESSERA_FUZZ needs TESSERA_CUDA=OFF")
  endif()
  set(_tessera_c_cxx "$<COMPILE_LANGUAGE:C,CXX>")
  add_compile_options(
    "$<${_tessera_c_cxx}:-fsanitize=${_tessera_sanitize_list}>"
    "$<${_tessera_c_cxx}:-fno-sanitize-recover=all>"
    "$<${_tessera_c_cxx}:-fno-omit-frame-pointer>")
  if(TESSERA_SANITIZE)
    add_link_options("-fsanitize=${TESSERA_SANITIZE}")
  endif()
  message(STATUS "Tessera sanitizers: ${_tessera_sanitize_list}")
endif()
