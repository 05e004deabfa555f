// Catch2's main(), compiled once and linked into every test executable (see CMakeLists.txt).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
