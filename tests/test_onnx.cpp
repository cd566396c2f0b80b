// ONNX export: the protobuf writer's bytes, the op tracer (composites as one op, silent when off),
// the graphs the zoo and a residual net trace to, and refusals that name the op and the module and
// leave no file behind. Real consumers check the files in ctest (onnx_checker, onnx_runtime,
// onnx_opencv).
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "helpers.hpp"
#include "onnx_models.hpp"
#include "onnx/proto.hpp"
#include "train/deploy.hpp"

using namespace xg;
namespace fs = std::filesystem;

namespace {

struct KindLog : trace::Listener {
  std::vector<std::string> kinds;
  std::vector<trace::Attrs> attrs;
  void op(const char* kind, const std::vector<Tensor>&, const Tensor&, const trace::Attrs& a) override {
    kinds.emplace_back(kind);
    attrs.push_back(a);
  }
};

std::vector<std::string> op_types(const onnx::Model& m) {
  std::vector<std::string> out;
  for (const onnx::Node& n : m.graph.nodes) out.push_back(n.op_type);
  return out;
}

bool has_initializer(const onnx::Model& m, const std::string& name) {
  for (const auto& i : m.graph.initializers)
    if (i.name == name) return true;
  return false;
}

// A module whose forward calls an op without an export rule (flip).
struct Flipper : nn::Module {
  Tensor forward(const Tensor& x) override { return flip(x, {3}); }
};

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

}  // namespace

TEST_CASE("onnx proto writer: varints, negative int64, strings, floats and nested messages") {
  onnx::proto::Writer w;
  w.varint_field(1, 300);  // key 0x08, 300 = 0b10_0101100 -> ac 02
  w.varint_field(2, -1);   // ten bytes of two's complement
  w.bytes_field(3, "ab");
  w.float_field(4, 1.0f);
  onnx::proto::Writer outer;
  outer.message_field(5, w);
  const std::string want("\x08\xac\x02\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x1a\x02"
                         "ab\x25\x00\x00\x80\x3f",
                         23);
  CHECK(w.bytes() == want);
  CHECK(outer.bytes() == std::string("\x2a\x17", 2) + want);
}

TEST_CASE("op tracing: off by default, one report per public op, composites as one op") {
  CHECK_FALSE(trace::enabled());
  Tensor x = randn({2, 3, 8, 8});
  Tensor w = randn({4, 3, 3, 3});
  KindLog log;
  {
    trace::Scope listening(log);
    CHECK(trace::enabled());
    gelu(x);                               // erf, mul and add inside stay silent
    linear(randn({2, 5}), randn({3, 5}));  // matmul-like gemm and add inside
    conv2d(x, w, Tensor(), {.stride = 2, .padding = 1});
    max_pool2d(x, {.kernel = 2});
    CHECK_THROWS(trace::Scope(log));  // one listener per thread
  }
  CHECK_FALSE(trace::enabled());
  CHECK(log.kinds == std::vector<std::string>{"gelu", "linear", "conv2d", "max_pool2d"});
  CHECK(std::get<std::vector<int64_t>>(log.attrs[2][0].second) == std::vector<int64_t>{2, 2});  // stride
  CHECK(std::get<std::vector<int64_t>>(log.attrs[2][1].second) == std::vector<int64_t>{1, 1});  // padding
  gelu(x);  // no listener: nothing reported
  CHECK(log.kinds.size() == 4);
}

TEST_CASE("onnx trace_model: the zoo's VGG and convnet-bn as ONNX graphs with named weights") {
  auto vgg = models::make_model("vgg");
  vgg->train();
  onnx::Model m = onnx::trace_model(*vgg, rand({2, 3, 32, 32}));
  std::vector<std::string> stage{"Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization", "Relu", "MaxPool"};
  std::vector<std::string> want;
  for (int s = 0; s < 3; ++s) want.insert(want.end(), stage.begin(), stage.end());
  want.insert(want.end(), {"Flatten", "Gemm"});
  CHECK(op_types(m) == want);
  CHECK(vgg->is_training());  // put back in the mode it was in
  CHECK(has_initializer(m, "features.0.weight"));
  CHECK(has_initializer(m, "features.1.running_var"));
  CHECK(has_initializer(m, "classifier.bias"));
  CHECK(m.graph.nodes.front().name == "features.0/Conv_0");
  CHECK(m.graph.nodes.back().outputs == std::vector<std::string>{"output"});
  CHECK(m.graph.inputs[0].name == "input");
  CHECK(m.graph.inputs[0].dynamic_batch);
  CHECK(m.graph.outputs[0].shape == Shape{2, 10});
  CHECK(m.ir_version == 7);
  CHECK(m.opset == 13);

  auto fc = models::make_model("fc");  // Flatten, then Gemm - BatchNormalization - Relu; dropout vanishes
  CHECK(op_types(onnx::trace_model(*fc, rand({2, 3, 32, 32}))) ==
        std::vector<std::string>{"Flatten", "Gemm", "BatchNormalization", "Relu", "Gemm", "BatchNormalization", "Relu",
                                 "Gemm", "BatchNormalization", "Relu", "Gemm"});
}

TEST_CASE("onnx trace_model: a residual connection is an Add of two branches; reshape keeps the batch dynamic") {
  onnx_test::ResidualNet net;
  onnx::Model m = onnx::trace_model(net, rand({2, 3, 32, 32}));
  int adds = 0, pools = 0;
  for (const onnx::Node& n : m.graph.nodes) {
    adds += n.op_type == "Add";
    pools += n.op_type == "GlobalAveragePool";
  }
  CHECK(adds == 2);
  CHECK(pools == 1);

  struct Reshaper : nn::Module {
    Tensor forward(const Tensor& x) override { return reshape(x, {x.shape()[0], -1}); }
  } r;
  onnx::Model rm = onnx::trace_model(r, rand({4, 3, 2, 2}));
  REQUIRE(op_types(rm) == std::vector<std::string>{"Reshape"});
  const Tensor& shape = rm.graph.initializers.at(0).value;
  CHECK(shape.to_vector<int64_t>() == std::vector<int64_t>{0, 12});  // 0: dim 0 copied, any batch
}

TEST_CASE("onnx export: an op without a rule is an error naming it and the module; nothing is written") {
  fs::path dir = fs::temp_directory_path() / fmt::format("xgrad_onnx_{}", ::getpid());
  fs::create_directories(dir);
  const std::string path = (dir / "m.onnx").string();
  {
    std::ofstream(path) << "previous";
  }
  nn::Sequential seq;
  seq.push_back(nn::ReLU());
  seq.push_back(Flipper());
  seq.push_back(nn::Linear(4, 2));
  CHECK_ERROR(onnx::export_model(seq, rand({2, 3, 4, 4}), path),
              "onnx::export_model: no ONNX export rule for 'flip' (its result reaches linear in module '2' (Linear))");
  CHECK(read_all(path) == "previous");  // the old file is intact, no temporary is left
  CHECK_FALSE(fs::exists(path + ".tmp"));

  struct TrainingBN : nn::Module {
    Tensor g = register_buffer("g", ones({3}));
    Tensor forward(const Tensor& x) override { return batch_norm(x, g, Tensor(), Tensor(), Tensor(), true); }
  } tbn;
  CHECK_ERROR(onnx::trace_model(tbn, rand({2, 3, 4, 4})),
              "onnx::export_model: batch_norm in module '<root>' (TrainingBN): training mode");
  struct Adaptive : nn::Module {
    Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, 3); }
  } ad;
  CHECK_ERROR(onnx::trace_model(ad, rand({1, 2, 8, 8})), "adaptive_avg_pool2d in module '<root>' (Adaptive): output "
              "size (3, 3) does not divide the input size (8, 8)");
  struct Dropper : nn::Module {
    Tensor forward(const Tensor& x) override { return dropout(x, 0.5, true); }
  } dr;
  CHECK_ERROR(onnx::trace_model(dr, rand({2, 4})), "dropout in module '<root>' (Dropper): training mode");
  struct Constant : nn::Module {
    Tensor forward(const Tensor&) override { return ones({2, 2}); }
  } c;
  CHECK_ERROR(onnx::trace_model(c, rand({2, 4})), "the output does not depend on the input");
  nn::Identity id;
  CHECK_ERROR(onnx::trace_model(id, rand({2, 4}), {.opset = 12}), "opset 12 is not supported");
  fs::remove_all(dir);
}

TEST_CASE("onnx export: weights computed by ops without rules are folded into initializers") {
  struct Scaled : nn::Module {
    Tensor w = register_parameter("w", randn({1, 4}));
    Tensor forward(const Tensor& x) override { return mul(x, flip(w, {1})); }  // flip of a weight only
  } s;
  onnx::Model m = onnx::trace_model(s, rand({2, 4}));
  CHECK(op_types(m) == std::vector<std::string>{"Mul"});
  REQUIRE(m.graph.initializers.size() == 1);
  CHECK(m.graph.initializers[0].value.to_vector<float>() == flip(s.w, {1}).to_vector<float>());
}

TEST_CASE("main command export: normalisation inside the graph, raw pixels in, logits out") {
  auto model = models::make_model("convnet");
  data::Normalization norm{{0.5f, 0.4f, 0.3f}, {0.2f, 0.25f, 0.3f}};
  train::Normalized wrapped(model, norm);
  onnx::Model m = onnx::trace_model(wrapped, full({1, 3, 32, 32}, 0.5), {.output_names = {"logits"}});
  std::vector<std::string> ops = op_types(m);
  REQUIRE(ops.size() > 2);
  CHECK(ops[0] == "Sub");
  CHECK(ops[1] == "Div");
  CHECK(has_initializer(m, "mean"));
  CHECK(has_initializer(m, "std"));
  CHECK(has_initializer(m, "model.features.0.weight"));
  CHECK(m.graph.outputs[0].name == "logits");
  Tensor x = rand({2, 3, 32, 32});
  model->eval();
  Tensor mean = from_vector(std::vector<float>{0.5f, 0.4f, 0.3f}, {1, 3, 1, 1});
  Tensor std = from_vector(std::vector<float>{0.2f, 0.25f, 0.3f}, {1, 3, 1, 1});
  CHECK(allclose(wrapped(x), (*model)((x - mean) / std)));
  CHECK(train::channel_list(norm.std) == "0.200000,0.250000,0.300000");
}
