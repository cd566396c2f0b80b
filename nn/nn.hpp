// xg::nn: modules, layers, initialisers and .safetensors checkpoints.
#pragma once

#include "nn/activation.hpp"
#include "nn/checkpoint.hpp"
#include "nn/containers.hpp"
#include "nn/fuse.hpp"
#include "nn/init.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"
#include "nn/norm.hpp"
#include "nn/reference_ops.hpp"
#include "nn/resize.hpp"
#include "nn/sequential.hpp"
#include "nn/summary.hpp"
