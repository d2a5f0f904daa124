// Paths compiled into the test binary (tests/CMakeLists.txt), each overridable at run time by
// the environment variable of the same name, so that a copy of the binary run from another
// folder (the GPU bundle of tools/gpu-bundle.sh) finds the cuebm command.
#pragma once

#include <cstdlib>
#include <string>

namespace cuebm::testing_support {

// $name when set and not empty, else the compiled-in value.
inline std::string env_or(const char* name, const char* compiled) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : std::string(compiled);
}

#ifdef CUEBM_CLI_PATH
// The cuebm command: $CUEBM_CLI_PATH, else the one the build made.
inline std::string cli_path() { return env_or("CUEBM_CLI_PATH", CUEBM_CLI_PATH); }
#endif

#ifdef CUEBM_TEST_DATA_DIR
// The tests' data folder: $CUEBM_TEST_DATA_DIR, else the build's tests/ folder.
inline std::string test_data_dir() { return env_or("CUEBM_TEST_DATA_DIR", CUEBM_TEST_DATA_DIR); }
#endif

}  // namespace cuebm::testing_support
