// Winograd convolution F(4x4, 3x3) for 3x3 stride-1 convolutions (Lavin & Gray, 2015): each 4x4
// output tile costs 36 multiplications per channel pair instead of 144, as 36 GEMMs over all tiles.
// Forward, input gradient and weight gradient all use the same three transforms (and their
// transposes). Used by the fused conv2d where it pays; the im2col path handles everything else.
#pragma once

#include "ops/geometry.hpp"

namespace xg::detail {

enum class ConvAlgorithm { automatic, im2col, winograd, onednn_winograd };
// Which algorithm the fused conv2d uses for the shapes Winograd supports; `automatic` picks by
// channel count, and in f32 takes oneDNN's Winograd kernel where the CPU has it
// (ops/fused/onednn_conv.cpp). `winograd` is xgrad's own; `onednn_winograd` oneDNN's f32 kernel at any
// channel count it takes (xgrad's own elsewhere, and for f64). For tests and benchmarks that compare them.
void set_conv_algorithm(ConvAlgorithm a);
ConvAlgorithm conv_algorithm();

// True when g is a 3x3 stride-1 convolution (dilation 1, one group) and Winograd is chosen for it.
bool use_winograd(const ConvGeometry& g);

// The tiles in one full chunk of images as winograd_forward and winograd_backward cut the batch for
// g: the N of each of the chunk's 36 GEMMs. For benchmarks.
int64_t winograd_chunk_tiles(const ConvGeometry& g, int64_t elem_bytes);

template <class T>
void winograd_forward(const T* x, const T* w, const T* bias, const ConvGeometry& g, T* out, bool relu = false);
// dx and dw may each be null when not needed; both are overwritten.
template <class T>
void winograd_backward(const T* x, const T* w, const T* dout, const ConvGeometry& g, T* dx, T* dw);

}  // namespace xg::detail
