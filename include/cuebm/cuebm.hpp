// The whole public API of cuEBM.
#pragma once

#include "cuebm/activation.hpp"
#include "cuebm/analytic.hpp"
#include "cuebm/cd.hpp"
#include "cuebm/device.hpp"
#include "cuebm/energy.hpp"
#include "cuebm/error.hpp"
#include "cuebm/langevin.hpp"
#include "cuebm/mlp.hpp"
#include "cuebm/optim.hpp"
#include "cuebm/schedule.hpp"
