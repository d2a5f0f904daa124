# The emulated CUDA backend (CUEBM_CUDA_EMULATION=ON, tests/cuda_emulation/README.md): the
# project's CUDA sources are rewritten by tests/cuda_emulation/rewrite.py into C++ that g++
# compiles against NVIDIA's headers (host mode) and an in-repository runtime in which every
# CUDA thread is a fiber. Needs g++, python3 and the CUDA toolkit's headers, no nvcc, no GPU.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
find_package(CUDAToolkit REQUIRED)
find_package(Threads REQUIRED)
include(GNUInstallDirs)

set(CUEBM_EMU_SOURCE_DIR ${PROJECT_SOURCE_DIR}/tests/cuda_emulation)
set(CUEBM_EMU_OUT_DIR ${PROJECT_BINARY_DIR}/cuda_emulation)
set(CUEBM_EMU_REWRITE ${CUEBM_EMU_SOURCE_DIR}/rewrite.py)

add_library(cuebm_cuda_emulation STATIC
  ${CUEBM_EMU_SOURCE_DIR}/cublas.cpp ${CUEBM_EMU_SOURCE_DIR}/fiber.cpp
  ${CUEBM_EMU_SOURCE_DIR}/racecheck.cpp ${CUEBM_EMU_SOURCE_DIR}/runtime.cpp
  ${CUEBM_EMU_SOURCE_DIR}/scheduler.cpp)
target_include_directories(cuebm_cuda_emulation PUBLIC ${CUDAToolkit_INCLUDE_DIRS})
target_link_libraries(cuebm_cuda_emulation PUBLIC Threads::Threads
                      PRIVATE $<BUILD_INTERFACE:cuebm_warnings> $<BUILD_INTERFACE:cuebm_options>)
set_target_properties(cuebm_cuda_emulation PROPERTIES POSITION_INDEPENDENT_CODE ON)
install(TARGETS cuebm_cuda_emulation EXPORT cuebmTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})

# Headers that hold CUDA syntax (kernels, launches, __shared__) are rewritten too; the others
# are read where they are.
file(GLOB_RECURSE _cuebm_emu_header_candidates CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/*.cuh
     ${PROJECT_SOURCE_DIR}/include/cuebm/*.hpp)
set(CUEBM_EMU_HEADERS)
foreach(header ${_cuebm_emu_header_candidates})
  file(STRINGS ${header} _cuda_syntax REGEX "<<<|__global__|__shared__")
  if(_cuda_syntax)
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${header})
    set(out ${CUEBM_EMU_OUT_DIR}/${rel})
    add_custom_command(OUTPUT ${out}
                       COMMAND Python3::Interpreter ${CUEBM_EMU_REWRITE} ${header} ${out}
                       DEPENDS ${header} ${CUEBM_EMU_REWRITE}
                       COMMENT "CUDA emulation: rewriting ${rel}")
    list(APPEND CUEBM_EMU_HEADERS ${out})
  endif()
endforeach()
add_custom_target(cuebm_emulated_headers DEPENDS ${CUEBM_EMU_HEADERS})

# The shared-memory race check instruments the emulated sources' loads and stores with GCC's
# ThreadSanitizer instrumentation (hooks in racecheck.cpp, no TSan runtime). It cannot be
# combined with AddressSanitizer, so the sanitizer build goes without it.
set(_racecheck_default ON)
if(CUEBM_SANITIZE)
  set(_racecheck_default OFF)
endif()
option(CUEBM_CUDA_EMULATION_RACECHECK "Check the emulated kernels for shared-memory races"
       ${_racecheck_default})
set(CUEBM_EMU_EXTRA_OPTIONS)
if(CUEBM_CUDA_EMULATION_RACECHECK)
  if(CUEBM_SANITIZE)
    message(FATAL_ERROR "CUEBM_CUDA_EMULATION_RACECHECK cannot be combined with CUEBM_SANITIZE")
  endif()
  # The instrumentation defeats GCC's flow analysis: -Wmaybe-uninitialized then flags arrays
  # filled through a call (custom_energy_cuda.hpp's gradient), which the nvcc build does not.
  set(CUEBM_EMU_EXTRA_OPTIONS -fsanitize=thread --param=tsan-instrument-func-entry-exit=0
                              -Wno-maybe-uninitialized)
endif()

# Thrust's headers do not compile under the emulation header (it defines __CUDACC__ and
# __CUDA_ARCH__), so a .cu source that includes Thrust (it holds no kernels of its own, e.g.
# kernels/runtime/device_reduce.cu) is compiled unchanged as plain C++ with CCCL's headers; it
# selects Thrust's CPP device system itself when CUEBM_CUDA_EMULATION is set.
find_path(CUEBM_CCCL_INCLUDE_DIR thrust/version.h HINTS ${CUDAToolkit_INCLUDE_DIRS}
          PATH_SUFFIXES cccl DOC "Folder holding CCCL's thrust/ (the CUDA toolkit's include/cccl)")

# cuebm_emulate_cuda(TARGET sources...): adds the rewritten .cu sources to TARGET, compiled as
# C++ with the emulation header force-included, and links the emulated runtime.
function(cuebm_emulate_cuda target)
  set(outputs)
  foreach(source ${ARGN})
    get_filename_component(abs ${source} ABSOLUTE)
    file(STRINGS ${abs} _uses_thrust REGEX "^#include <thrust/")
    if(_uses_thrust)
      if(NOT CUEBM_CCCL_INCLUDE_DIR)
        message(FATAL_ERROR "cuEBM: ${source} needs Thrust, but no thrust/version.h was found "
                            "under ${CUDAToolkit_INCLUDE_DIRS}: set CUEBM_CCCL_INCLUDE_DIR")
      endif()
      set(_thrust_options "-isystem;${CUEBM_CCCL_INCLUDE_DIR}")
      if(CUEBM_SANITIZE)
        # Thrust's CPP system binds references to a null execution-policy pointer
        # (thrust/detail/reference.h) when it assigns through its iterators, which UBSan's null
        # check rejects; the check stays on everywhere else.
        list(APPEND _thrust_options -fno-sanitize=null)
      endif()
      set_source_files_properties(${abs} PROPERTIES LANGUAGE CXX COMPILE_OPTIONS
                                  "${_thrust_options}")
      list(APPEND outputs ${abs})
      continue()
    endif()
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${abs})
    set(out ${CUEBM_EMU_OUT_DIR}/${rel}.cpp)
    get_filename_component(dir ${abs} DIRECTORY)
    add_custom_command(OUTPUT ${out}
                       COMMAND Python3::Interpreter ${CUEBM_EMU_REWRITE} ${abs} ${out}
                       DEPENDS ${abs} ${CUEBM_EMU_REWRITE}
                       COMMENT "CUDA emulation: rewriting ${rel}")
    # Quote includes: the rewritten headers first (-iquote precedes -I; the project includes
    # "kernels/..." from the repository root and "cuebm/..." from include/), then the original
    # folder for the headers included relative to the source.
    set_source_files_properties(${out} PROPERTIES COMPILE_OPTIONS
      "-include;${CUEBM_EMU_SOURCE_DIR}/cuda_emulation.hpp;-iquote;${CUEBM_EMU_OUT_DIR};-iquote;${CUEBM_EMU_OUT_DIR}/include;-iquote;${dir};-Wno-unknown-pragmas;${CUEBM_EMU_EXTRA_OPTIONS}")
    list(APPEND outputs ${out})
  endforeach()
  target_sources(${target} PRIVATE ${outputs})
  target_include_directories(${target} PRIVATE ${CUEBM_EMU_SOURCE_DIR})
  target_link_libraries(${target} PRIVATE cuebm_cuda_emulation)
  add_dependencies(${target} cuebm_emulated_headers)
endfunction()
