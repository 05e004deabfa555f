# `cmake --install` support: headers, libraries and a CMake package that another project consumes
# with
#
#     find_package(tapegrad 0.1 REQUIRED)                       # every installed component
#     find_package(tapegrad REQUIRED COMPONENTS autodiff)       # or only some
#     target_link_libraries(app PRIVATE tapegrad::autodiff)
#
# Each component (a library target plus the headers of its directory) has its own export set,
# tapegrad-<component>-targets.cmake, and its own list of dependencies; tapegradConfig.cmake loads
# the components asked for, their tapegrad prerequisites first, and find_dependency()s what each
# needs. Adding a component is one tapegrad_install_component() call at the bottom of this file.
#
# Layout under the prefix:
#   include/tapegrad/<component>/*.hpp      (the targets' INSTALL_INTERFACE include dir is
#                                            include/tapegrad, so `#include <autodiff/var.hpp>`)
#   lib/libtapegrad_<component>.a
#   lib/cmake/tapegrad/tapegradConfig.cmake, tapegradConfigVersion.cmake,
#                      tapegrad-<component>-targets*.cmake

include(CMakePackageConfigHelpers)

set(TAPEGRAD_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/tapegrad" CACHE STRING
    "Where the tapegrad CMake package files go, relative to the install prefix")
mark_as_advanced(TAPEGRAD_INSTALL_CMAKEDIR)

# tapegrad_install_component(<name> TARGET <target>
#                            [HEADERS <dir>]                    default: <source root>/<name>
#                            [REQUIRES <component>...]          tapegrad components it links to
#                            [DEPENDENCIES "[VAR=value...] <package> [find_package args]"...])
#
# Installs <target> (exported as tapegrad::<EXPORT_NAME>, set on the target) and the *.hpp files
# of <dir> (subdirectories kept) into include/tapegrad/<name>/, and records for
# tapegradConfig.cmake what the component needs: one find_dependency(<package> [args]) per
# DEPENDENCIES entry, with the VAR=value words set around that call only (BLA_VENDOR=OpenBLAS).
# Components must be declared after the components they REQUIRE. Every namespaced target the
# component's target links (PUBLIC, or PRIVATE for a static library) needs its package here; the
# configure step stops with a message naming it otherwise.
function(tapegrad_install_component name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "TARGET;HEADERS" "REQUIRES;DEPENDENCIES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "tapegrad_install_component(${name}): unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET "${arg_TARGET}")
    message(FATAL_ERROR "tapegrad_install_component(${name}): TARGET '${arg_TARGET}' is not a target")
  endif()
  if(NOT arg_HEADERS)
    set(arg_HEADERS "${PROJECT_SOURCE_DIR}/${name}")
  endif()
  get_property(known GLOBAL PROPERTY TAPEGRAD_INSTALL_COMPONENTS)
  foreach(required IN LISTS arg_REQUIRES)
    if(NOT required IN_LIST known)
      message(FATAL_ERROR "tapegrad_install_component(${name}): REQUIRES '${required}', which is "
                          "not declared before it")
    endif()
  endforeach()
  set(packages)
  foreach(dependency IN LISTS arg_DEPENDENCIES)
    if(dependency MATCHES "[\"\\\\$;]")
      message(FATAL_ERROR "tapegrad_install_component(${name}): DEPENDENCIES entry '${dependency}' "
                          "must be plain words separated by spaces")
    endif()
    set(package "${dependency}")
    while(package MATCHES "^[A-Za-z_][A-Za-z0-9_]*=[^ ]* +(.*)$")  # VAR=value words
      set(package "${CMAKE_MATCH_1}")
    endwhile()
    string(REGEX REPLACE " .*" "" package "${package}")
    string(TOLOWER "${package}" package)
    list(APPEND packages "${package}")
  endforeach()
  # What the installed target will ask its users to link: every namespaced target in it (other
  # than tapegrad's own) must come from a package in DEPENDENCIES, or find_package(tapegrad) would
  # hand out a target that names one nobody defined.
  get_target_property(interface ${arg_TARGET} INTERFACE_LINK_LIBRARIES)
  if(interface)
    string(REGEX REPLACE "\\$<BUILD_INTERFACE:[^>]*>" "" interface "${interface}")
    string(REGEX MATCHALL "[A-Za-z0-9_.+-]+::[A-Za-z0-9_.+-]+" linked "${interface}")
    foreach(target IN LISTS linked)
      string(REGEX REPLACE "::.*" "" namespace "${target}")
      string(TOLOWER "${namespace}" namespace)
      if(NOT namespace STREQUAL "tapegrad" AND NOT namespace IN_LIST packages)
        message(FATAL_ERROR "tapegrad_install_component(${name}): ${arg_TARGET} links ${target}, "
                            "but DEPENDENCIES names no package '${namespace}'; add it to the "
                            "component's call in ${CMAKE_CURRENT_LIST_FILE}")
      endif()
    endforeach()
  endif()

  install(TARGETS ${arg_TARGET} EXPORT tapegrad-${name}-targets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(DIRECTORY "${arg_HEADERS}/"
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tapegrad/${name}
          FILES_MATCHING PATTERN "*.hpp")
  install(EXPORT tapegrad-${name}-targets
          NAMESPACE tapegrad::
          FILE tapegrad-${name}-targets.cmake
          DESTINATION ${TAPEGRAD_INSTALL_CMAKEDIR})

  # One entry of the component table that tapegradConfig.cmake reads (@TAPEGRAD_COMPONENT_TABLE@).
  string(JOIN " " requires ${arg_REQUIRES})
  list(TRANSFORM arg_DEPENDENCIES PREPEND "\"")
  list(TRANSFORM arg_DEPENDENCIES APPEND "\"")
  string(JOIN " " dependencies ${arg_DEPENDENCIES})
  set_property(GLOBAL APPEND PROPERTY TAPEGRAD_INSTALL_COMPONENTS ${name})
  set_property(GLOBAL APPEND_STRING PROPERTY TAPEGRAD_COMPONENT_TABLE
    "set(_tapegrad_${name}_requires ${requires})\nset(_tapegrad_${name}_dependencies ${dependencies})\n")
endfunction()

# Writes tapegradConfig.cmake and tapegradConfigVersion.cmake for the components declared so far.
function(tapegrad_install_package)
  get_property(TAPEGRAD_COMPONENTS GLOBAL PROPERTY TAPEGRAD_INSTALL_COMPONENTS)
  get_property(TAPEGRAD_COMPONENT_TABLE GLOBAL PROPERTY TAPEGRAD_COMPONENT_TABLE)
  set(dir "${PROJECT_BINARY_DIR}/cmake")
  configure_package_config_file(
    "${PROJECT_SOURCE_DIR}/cmake/tapegradConfig.cmake.in" "${dir}/tapegradConfig.cmake"
    INSTALL_DESTINATION ${TAPEGRAD_INSTALL_CMAKEDIR}
    NO_SET_AND_CHECK_MACRO)
  write_basic_package_version_file("${dir}/tapegradConfigVersion.cmake"
    VERSION ${PROJECT_VERSION}
    COMPATIBILITY SameMajorVersion)
  install(FILES "${dir}/tapegradConfig.cmake" "${dir}/tapegradConfigVersion.cmake"
          DESTINATION ${TAPEGRAD_INSTALL_CMAKEDIR})
endfunction()

# ---- The components, prerequisites first ----------------------------------------------------

tapegrad_install_component(autodiff TARGET tapegrad_autodiff
                           DEPENDENCIES "fmt 9" "BLA_VENDOR=OpenBLAS BLAS")
tapegrad_install_component(nn TARGET tapegrad_nn REQUIRES autodiff
                           DEPENDENCIES "range-v3" "ZLIB")

tapegrad_install_package()
