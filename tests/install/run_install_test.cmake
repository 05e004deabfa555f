# Driven by the ctest install.find_package (see CMakeLists.txt here):
#   1. cmake --install the tapegrad build into PREFIX (emptied first),
#   2. configure CONSUMER_SOURCE against PREFIX only, build it,
#   3. run its tests.
# Any failing step fails the test, with the step's output.
foreach(var TAPEGRAD_BUILD PREFIX INCLUDEDIR CONSUMER_SOURCE CONSUMER_BUILD GENERATOR CXX_COMPILER CTEST)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_install_test.cmake: -D${var}=... is required")
  endif()
endforeach()

function(step what)
  message(STATUS "install test: ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "install test: ${what} failed (${rc}): ${command}")
  endif()
endfunction()

file(REMOVE_RECURSE "${PREFIX}" "${CONSUMER_BUILD}")

set(config_args)
if(NOT "${CONFIG}" STREQUAL "")
  set(config_args --config "${CONFIG}")
endif()
step("cmake --install into ${PREFIX}"
     "${CMAKE_COMMAND}" --install "${TAPEGRAD_BUILD}" --prefix "${PREFIX}" ${config_args})

# The headers are where the documentation says, under a tapegrad/ prefix.
foreach(header autodiff/autodiff.hpp autodiff/var.hpp autodiff/tape.hpp autodiff/subgradient.hpp)
  if(NOT EXISTS "${PREFIX}/${INCLUDEDIR}/tapegrad/${header}")
    message(FATAL_ERROR "install test: ${PREFIX}/${INCLUDEDIR}/tapegrad/${header} was not installed")
  endif()
endforeach()

set(make_program)
if(NOT "${MAKE_PROGRAM}" STREQUAL "")
  set(make_program "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
step("configure the consumer"
     "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE}" -B "${CONSUMER_BUILD}" -G "${GENERATOR}"
     ${make_program}
     "-DCMAKE_BUILD_TYPE=${CONFIG}"
     "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
     "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
     "-DCMAKE_EXE_LINKER_FLAGS=${LINK_FLAGS}"
     "-DCMAKE_PREFIX_PATH=${PREFIX}"
     # Only PREFIX may provide tapegrad: no package registries, no build trees.
     -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
     -DCMAKE_FIND_PACKAGE_NO_SYSTEM_PACKAGE_REGISTRY=ON
     "-DEXPECTED_PREFIX=${PREFIX}")
step("build the consumer" "${CMAKE_COMMAND}" --build "${CONSUMER_BUILD}" ${config_args})
if("${CONFIG}" STREQUAL "")
  step("run the consumer" "${CTEST}" --test-dir "${CONSUMER_BUILD}" --output-on-failure)
else()
  step("run the consumer" "${CTEST}" --test-dir "${CONSUMER_BUILD}" -C "${CONFIG}"
       --output-on-failure)
endif()
