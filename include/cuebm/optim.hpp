// Forwarding header, kept for one release (CHANGELOG.md, 0.2.0): the header moved to
// cuebm/training/optim.hpp. Include that path instead.
#pragma once

#include "cuebm/training/optim.hpp"
