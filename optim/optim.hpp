// xg::optim: optimizers, learning-rate schedules and gradient clipping.
#pragma once

#include "optim/optimizer.hpp"
#include "optim/optimizers.hpp"
#include "optim/schedule.hpp"
#include "optim/swa_utils.hpp"
