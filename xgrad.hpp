// xgrad: the umbrella header. Lean on purpose: no xtensor here (see xgrad_xtensor.hpp for interop).
#pragma once

#include "autograd/allocator.hpp"
#include "autograd/engine.hpp"
#include "autograd/format.hpp"
#include "autograd/function.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/grad_mode.hpp"
#include "autograd/parallel.hpp"
#include "autograd/process.hpp"
#include "autograd/tensor.hpp"
#include "distributed/ddp.hpp"
#include "distributed/distributed.hpp"
#include "nn/nn.hpp"
#include "onnx/export.hpp"
#include "ops/ops.hpp"
#include "optim/optim.hpp"
#include "data/data.hpp"
