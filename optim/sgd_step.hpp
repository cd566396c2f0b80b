// SGD's update of one parameter, shared by SGD and by Muon's groups that do not orthogonalise.
#pragma once

#include "optim/optimizers.hpp"

namespace xg::optim::detail {

// One step of SGD (see SGD) on param from grad, off the tape. buf: the momentum buffer (undefined when
// o.momentum is 0); first: buf was just created, so it takes the gradient as it is (PyTorch's "buf is None").
void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& buf, bool first, const SGDOptions& o);

}  // namespace xg::optim::detail
