// Forwarding header, kept for one release (CHANGELOG.md, 0.2.0): the header moved to
// cuebm/runtime/error.hpp. Include that path instead.
#pragma once

#include "cuebm/runtime/error.hpp"
