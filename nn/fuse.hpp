// Eval-mode fusion of a trained model for inference, as PyTorch's torch.ao.quantization.fuse_modules.
//
//   model->eval();
//   nn::fuse_for_inference(*model);                        // every Sequential's conv-bn-relu runs
//   nn::fuse_modules(*model, {{"conv1", "bn1", "relu1"}});  // layers a forward() calls by name
//
// A batch norm right after a Conv2d (BatchNorm2d) or a Linear (BatchNorm1d) is folded into the
// layer's weight and bias, per output channel f:
//   s = gamma / sqrt(running_var + eps),  weight'[f] = s weight[f],  bias' = s (bias - running_mean) + beta
// (gamma 1 and beta 0 without affine; a layer without bias gets one). A ReLU right after the layer,
// or after its batch norm, is applied in the layer's output pass, together with the bias
// (ops/fused/inference.hpp). The model computes what it computed, to float rounding, in fewer passes.
//
// The modules stay where they are, so a model's members still point at them: the folded batch norm
// and the fused ReLU become the identity, the batch norm's tensors reset to an identity's (mean 0,
// variance 1 - eps, gamma 1, beta 0), so that the fused model's state_dict describes what it computes.
// Fusion is for inference only:
// - the model must be in eval mode, else xg::Error and nothing changes;
// - afterwards every changed module refuses a forward in training mode (xg::Error naming it) and the
//   fused layers' parameters no longer require grad, so a fused model cannot be trained by mistake.
//   To train again, build the model anew and load its unfused weights;
// - load weights before fusing: a fused model refuses load_state_dict and load (xg::Error). A fused
//   model's own state dict loads into the unfused model and computes the same (its batch norms are
//   identities);
// - a fused model exports to ONNX as Conv (or Gemm) and Relu, the batch norms gone.
// Both functions also pack every Linear's weight in the model (fused or not): W^T is written out once,
// so that a forward without gradient runs its GEMM with no per-call transpose (ONNX Runtime's
// prepacking). A Linear whose weight is written afterwards (trained again) runs unpacked; the packed
// copy costs the weight's size once more.
#pragma once

#include <string>
#include <vector>

#include "nn/module.hpp"

namespace xg::nn {

// Groups of modules by dotted name ("features.0"): a Conv2d or Linear, then its batch norm, ReLU or both.
using FusionGroups = std::vector<std::vector<std::string>>;

// Fuses every run of Conv2d [BatchNorm2d] [ReLU] and Linear [BatchNorm1d] [ReLU] (at least two of the
// three) found among the consecutive entries of each nn::Sequential in the model: a Sequential's
// order is its forward's. Skips a run that cannot be fused (a batch norm without running statistics,
// a module registered at more than one place). Layers that a model's own forward() calls, or that sit
// in a ModuleList, are fused by name with fuse_modules. Returns the groups fused.
FusionGroups fuse_for_inference(Module& model);

// Fuses the named groups. The caller vouches that each group's modules run one after the other in
// the forward, and each only there (a module called twice would change at both calls). All groups are
// checked before any is fused: an xg::Error (an unknown name, a group of another form, a module
// already fused or registered twice, a batch norm without running statistics or of another width)
// changes nothing. Returns the groups.
FusionGroups fuse_modules(Module& model, const FusionGroups& groups);

}  // namespace xg::nn
