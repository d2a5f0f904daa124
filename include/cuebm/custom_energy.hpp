// Forwarding header, kept for one release (CHANGELOG.md, 0.2.0): the header moved to
// cuebm/sampling/custom_energy.hpp. Include that path instead.
#pragma once

#include "cuebm/sampling/custom_energy.hpp"
