// The whole public API of cuEBM.
#pragma once

#include "cuebm/models/activation.hpp"
#include "cuebm/models/analytic.hpp"
#include "cuebm/models/energy.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "cuebm/sampling/schedule.hpp"
#include "cuebm/training/cd.hpp"
#include "cuebm/training/optim.hpp"
