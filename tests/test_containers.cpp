// ModuleList, ModuleDict, named_modules, apply, requires_grad_, non-strict load_state_dict,
// count_parameters and summary.
#include "helpers.hpp"

using namespace xg;

namespace {
// A model whose forward calls its layers through operator() (as summary observes) and one directly.
struct Tower : nn::Module {
  std::shared_ptr<nn::Sequential> features = register_module(
      "features", nn::Sequential(nn::Conv2d({.in_channels = 3, .out_channels = 4, .kernel_size = 3, .padding = 1}),
                                 nn::BatchNorm2d(4), nn::ReLU(), nn::MaxPool2d(2)));
  std::shared_ptr<nn::ModuleList> heads = register_module("heads", nn::ModuleList(nn::Linear(64, 8), nn::Linear(8, 2)));
  std::shared_ptr<nn::ModuleDict> extra = [this] {
    auto d = register_module("extra", nn::ModuleDict());
    d->insert("act", nn::GELU());
    return d;
  }();
  std::shared_ptr<nn::Dropout> drop = register_module("drop", nn::Dropout(0.5));
  Tensor forward(const Tensor& x) override {
    Tensor h = flatten((*features)(x), 1);
    h = (*extra->operator[]("act"))((*heads->ptr(0))(drop->forward(h)));  // drop: called directly
    return (*heads->ptr(1))(h);
  }
};

std::vector<std::string> keys(const nn::NamedModules& list) {
  std::vector<std::string> out;
  for (const auto& [n, m] : list) out.push_back(n);
  return out;
}
}  // namespace

TEST_CASE("ModuleList and ModuleDict: registration, access, parameters") {
  nn::ModuleList list(nn::Linear(2, 3), nn::ReLU());
  auto fc = list.append(nn::Linear(3, 1));
  CHECK(list.size() == 3);
  CHECK(list[2].get() == fc.get());
  CHECK(list.at<nn::Linear>(0).options().out_features == 3);
  CHECK(list.parameters().size() == 4);
  CHECK(list.named_parameters()[2].first == "2.weight");
  int n = 0;
  for (auto& m : list) n += m != nullptr;
  CHECK(n == 3);
  nn::ModuleDict dict;
  dict.insert("enc", nn::Linear(4, 2));
  dict.insert("act", std::make_shared<nn::SiLU>());
  CHECK(dict.keys() == std::vector<std::string>{"enc", "act"});
  CHECK(dict.contains("act"));
  CHECK(!dict.contains("dec"));
  CHECK(dict.at<nn::Linear>("enc").options().in_features == 4);
  CHECK(dict.named_parameters()[0].first == "enc.weight");
  CHECK(dict.items()[1].first == "act");
  CHECK(fmt::format("{}", dict) == "ModuleDict(\n  (enc): Linear(in_features=4, out_features=2, bias=true)\n  (act): SiLU()\n)");
  CHECK_ERROR(list[3], "ModuleList: index 3 is out of range for 3 modules");
  CHECK_ERROR(list.at<nn::Linear>(1), "ModuleList: module 1 is a ReLU, not the requested type");
  CHECK_ERROR(dict["dec"], "ModuleDict: no module under key 'dec' (keys: enc, act)");
  CHECK_ERROR(dict.at<nn::Linear>("act"), "ModuleDict: module 'act' is a SiLU, not the requested type");
  CHECK_ERROR(dict.insert("enc", nn::ReLU()), "ModuleDict: register_module: name 'enc' is already registered");
  CHECK_ERROR(dict.insert("a.b", nn::ReLU()), "ModuleDict: register_module: name 'a.b' contains a '.'");
  CHECK_ERROR(list.forward(ones({2})), "ModuleList: forward(const Tensor&) is not defined for this module");
}

TEST_CASE("Module: named_modules, apply, requires_grad_") {
  Tower t;
  auto all = t.named_modules();
  CHECK(keys(all) == std::vector<std::string>{"", "features", "features.0", "features.1", "features.2", "features.3",
                                              "heads", "heads.0", "heads.1", "extra", "extra.act", "drop"});
  CHECK(all[0].second.get() == &t);
  CHECK(keys(t.named_modules("net", false))[0] == "net.features");
  CHECK(t.modules().size() == 12);
  // A module registered twice is listed once.
  nn::Sequential shared;
  auto relu = shared.push_back(std::make_shared<nn::ReLU>());
  shared.push_back(relu);
  CHECK(keys(shared.named_modules()) == std::vector<std::string>{"", "0"});
  // apply: children first, then the parent; e.g. re-initialise every Linear.
  std::vector<std::string> order;
  t.apply([&](nn::Module& m) {
    order.push_back(m.name());
    if (auto* fc = dynamic_cast<nn::Linear*>(&m)) nn::init::zeros_(fc->weight());
  });
  CHECK(order.front() == "Conv2d");
  CHECK(order.back() == "Tower");
  CHECK(order.size() == 12);
  CHECK(sum(abs(t.heads->at<nn::Linear>(0).weight())).item<float>() == 0.0f);
  // Freezing.
  t.features->requires_grad_(false);
  for (auto& [n, p] : t.named_parameters()) CHECK(p.requires_grad() == !n.starts_with("features"));
  CHECK(nn::count_parameters(t, true) == 64 * 8 + 8 + 8 * 2 + 2);
  t.requires_grad_();
  CHECK(nn::count_parameters(t, true) == nn::count_parameters(t));
}

TEST_CASE("Module: load_state_dict non-strict returns missing and unexpected keys") {
  nn::Sequential a(nn::Linear(3, 2), nn::ReLU(), nn::Linear(2, 1));
  nn::Sequential b(nn::Linear(3, 2));
  nn::NamedTensors state = b.state_dict();
  state.emplace_back("9.weight", zeros({1}));
  for (auto& [n, t] : state) nn::init::constant_(t, 0.5);
  nn::IncompatibleKeys k = a.load_state_dict(state, {.strict = false});
  CHECK(k.missing_keys == std::vector<std::string>{"2.weight", "2.bias"});
  CHECK(k.unexpected_keys == std::vector<std::string>{"9.weight"});
  CHECK(a.at<nn::Linear>(0).weight().to_vector<float>() == std::vector<float>(6, 0.5f));  // the matching ones loaded
  CHECK(a.at<nn::Linear>(2).weight().to_vector<float>() != std::vector<float>(2, 0.5f));
  // Strict (the default) refuses both, and a wrong shape is refused either way; nothing changes.
  CHECK_ERROR(a.load_state_dict(state), "Sequential: load_state_dict: 2 missing: 2.weight, 2.bias; 1 unexpected: 9.weight");
  nn::NamedTensors bad = {{"0.weight", zeros({3, 3})}};
  CHECK_ERROR(a.load_state_dict(bad, {.strict = false}),
              "Sequential: load_state_dict: 1 wrong: 0.weight: shape [3,3] in the checkpoint, [2,3] in the model; the model is unchanged");
  CHECK(a.at<nn::Linear>(0).weight().to_vector<float>() == std::vector<float>(6, 0.5f));
  k = a.load_state_dict(a.state_dict());
  CHECK(k.missing_keys.empty());
  CHECK(k.unexpected_keys.empty());
}

TEST_CASE("summary: per-layer output shapes, parameter counts, modes restored") {
  Tower t;
  t.train();
  t.drop->eval();  // a mixed set of modes comes back as it was
  Tensor running = t.features->at<nn::BatchNorm2d>(1).running_mean().clone();
  nn::ModelSummary s = nn::summary(t, {2, 3, 8, 8});
  CHECK(s.output_shape == Shape{2, 2});
  CHECK(s.total_params == (4 * 3 * 9 + 4) + 8 + (64 * 8 + 8) + (8 * 2 + 2));
  CHECK(s.trainable_params == s.total_params);
  REQUIRE(s.rows.size() == 12);
  CHECK(s.rows[2].name == "features.0");
  CHECK(s.rows[2].type == "Conv2d");
  CHECK(s.rows[2].depth == 2);
  CHECK(s.rows[2].params == 112);
  CHECK(s.rows[2].output_shape == Shape{2, 4, 8, 8});
  CHECK(s.rows[5].output_shape == Shape{2, 4, 4, 4});    // the pool
  CHECK(s.rows[10].output_shape == Shape{2, 8});         // extra.act
  CHECK(!s.rows[11].output_shape.has_value());           // drop: forward() called directly
  CHECK(!s.rows[6].output_shape.has_value());            // heads: a ModuleList is never called
  CHECK(t.is_training());
  CHECK(t.features->at<nn::BatchNorm2d>(1).is_training());
  CHECK(!t.drop->is_training());
  CHECK(allclose(t.features->at<nn::BatchNorm2d>(1).running_mean(), running, 0, 0));
  const std::string text = fmt::format("{}", s);
  INFO(text);
  CHECK(text.find("Tower") != std::string::npos);
  CHECK(text.find("    0 (Conv2d)") != std::string::npos);
  CHECK(text.find("[2,4,8,8]") != std::string::npos);
  CHECK(text.find("Total params: 658") != std::string::npos);
  CHECK(text.find("Non-trainable params: 0") != std::string::npos);
  t.features->requires_grad_(false);
  CHECK(nn::summary(t, {1, 3, 8, 8}).trainable_params == 538);
  CHECK(fmt::format("{}", nn::summary(t, {1, 3, 8, 8})).find("Trainable params: 538") != std::string::npos);
  // Bad input: the forward's own error, and the modes still restored.
  CHECK_ERROR(nn::summary(t, {1, 5, 8, 8}), "Conv2d: input shape [1,5,8,8] has 5 channels");
  CHECK(t.is_training());
  CHECK(nn::count_parameters(nn::Sequential(nn::Linear(1000, 1000))) == 1001000);
  CHECK(fmt::format("{}", nn::summary(*std::make_shared<nn::Linear>(1000, 1000), {1, 1000})).find("1,001,000") !=
        std::string::npos);
  CHECK_ERROR(nn::summary(t, {-1, 3, 8, 8}), "summary: input_shape [-1,3,8,8] has a negative size");
}
