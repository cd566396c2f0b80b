// .safetensors checkpoints: bit-exact round trips, all-or-nothing loads, malformed files, atomic
// writes, a resumed run continuing exactly, and a stdlib-Python cross-check of the format.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "helpers.hpp"

using namespace xg;
namespace fs = std::filesystem;

namespace {
struct TempDir {
  fs::path path = fs::temp_directory_path() / fmt::format("xgrad_checkpoint_{}", ::getpid());
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string bytes_of(const Tensor& t) {
  return std::string(static_cast<const char*>(t.impl().storage->data()), t.numel() * dtype_size(t.dtype()));
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A file from a header text and data bytes, with the 8-byte length prefix (optionally a lying one).
std::string raw_file(const std::string& header, const std::string& data, int64_t claimed_length = -1) {
  uint64_t n = claimed_length < 0 ? header.size() : static_cast<uint64_t>(claimed_length);
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

struct Small : nn::Module {
  std::shared_ptr<nn::Linear> fc1 = register_module("fc1", nn::Linear(3, 4));
  std::shared_ptr<nn::BatchNorm1d> bn = register_module("bn", nn::BatchNorm1d(4));
  std::shared_ptr<nn::Linear> fc2 = register_module("fc2", nn::Linear(4, 2));
  Tensor forward(const Tensor& x) override { return fc2->forward(relu(bn->forward(fc1->forward(x)))); }
};
}  // namespace

TEST_CASE("safetensors: round trip is bit-exact for every dtype, 0-d and empty tensors") {
  TempDir dir;
  manual_seed(5);
  nn::NamedTensors tensors = {{"f32", randn({3, 4})},
                              {"f64", randn({2, 2, 2}, Dtype::f64)},
                              {"i64", from_vector<int64_t>({-1, 0, 1LL << 40})},
                              {"scalar", scalar_tensor(2.5, Dtype::f64)},
                              {"empty", zeros({0, 3})}};
  tensors[0].second.data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
  nn::save_safetensors(dir / "a.safetensors", tensors, {{"epoch", "3"}, {"note", "héllo"}});
  CHECK_FALSE(fs::exists(dir / "a.safetensors.tmp"));
  std::string raw = read_file(dir / "a.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  CHECK(n % 8 == 0);  // header padded so the data starts 8-byte aligned, as the reference writer does
  CHECK(raw[8] == '{');

  nn::Safetensors back = nn::load_safetensors(dir / "a.safetensors");
  CHECK(back.metadata == nn::Metadata{{"epoch", "3"}, {"note", "héllo"}});
  REQUIRE(back.tensors.size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    INFO(tensors[i].first);
    CHECK(back.tensors[i].first == tensors[i].first);
    CHECK(back.tensors[i].second.shape() == tensors[i].second.shape());
    CHECK(back.tensors[i].second.dtype() == tensors[i].second.dtype());
    CHECK(bytes_of(back.tensors[i].second) == bytes_of(tensors[i].second));
  }
  CHECK_ERROR(nn::save_safetensors(dir / "b.safetensors", {{"x", ones({1})}, {"x", ones({1})}}),
              "tensor name 'x' appears twice");
  CHECK_ERROR(nn::save_safetensors(dir / "b.safetensors", {{"__metadata__", ones({1})}}),
              "invalid tensor name '__metadata__'");
}

TEST_CASE("Module: save then load restores parameters and buffers bit-exactly") {
  TempDir dir;
  manual_seed(1);
  Small a;
  a.forward(randn({5, 3}));  // moves the running statistics off their initial values
  a.save(dir / "m.safetensors", {{"epoch", "7"}});
  manual_seed(2);
  Small b;
  CHECK(bytes_of(b.fc1->weight()) != bytes_of(a.fc1->weight()));
  nn::Metadata meta = b.load(dir / "m.safetensors");
  CHECK(meta.at("epoch") == "7");
  auto sa = a.state_dict(), sb = b.state_dict();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    INFO(sa[i].first);
    CHECK(bytes_of(sa[i].second) == bytes_of(sb[i].second));
  }
  CHECK(b.bn->num_batches_tracked().item<int64_t>() == 1);
  CHECK(b.fc1->weight().requires_grad());  // loading copies values; parameters stay parameters
}

TEST_CASE("Module: a checkpoint with missing, extra or wrongly shaped tensors is rejected as a whole") {
  TempDir dir;
  manual_seed(1);
  Small a;
  nn::NamedTensors state = a.state_dict();
  state.erase(state.begin() + 1);                          // fc1.bias missing
  state.emplace_back("fc3.weight", ones({2, 2}));           // extra
  state[0].second = zeros({3, 4});                          // fc1.weight transposed
  nn::save_safetensors(dir / "bad.safetensors", state);
  manual_seed(2);
  Small b;
  std::string before;
  for (const auto& [n, t] : b.state_dict()) before += bytes_of(t);
  std::string msg;
  try {
    b.load(dir / "bad.safetensors");
  } catch (const Error& e) {
    msg = e.what();
  }
  INFO(msg);
  CHECK(msg.find("Small: load: checkpoint '") == 0);
  for (const char* part : {"1 missing: fc1.bias", "1 unexpected: fc3.weight",
                           "fc1.weight: shape [3,4] in the checkpoint, [4,3] in the model", "the model is unchanged"})
    CHECK_MESSAGE(msg.find(part) != std::string::npos, part);
  std::string after;
  for (const auto& [n, t] : b.state_dict()) after += bytes_of(t);
  CHECK(before == after);
  CHECK_ERROR(b.load_state_dict({{"bn.num_batches_tracked", ones({})}}),
              "bn.num_batches_tracked: dtype f32 in the checkpoint, i64 in the model");
  CHECK_ERROR(b.load(dir / "missing.safetensors"), "load_safetensors: cannot open");
}

TEST_CASE("safetensors: truncated, corrupted and lying files fail cleanly") {
  TempDir dir;
  const std::string path = dir / "x.safetensors";
  nn::save_safetensors(path, {{"a", from_vector<float>({1, 2, 3})}, {"b", from_vector<double>({4})}});
  const std::string good = read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, good.data(), 8);
  auto expect = [&](const std::string& bytes, const std::string& text) {
    write_file(path, bytes);
    CHECK_ERROR(nn::load_safetensors(path), text);
    CHECK_ERROR(nn::load_safetensors(path), path);  // every message names the file
  };
  expect(good.substr(0, 5), "5 bytes is too short for the 8-byte header length");
  expect(good.substr(0, 8 + n / 2), "exceeds the");
  expect(good.substr(0, good.size() - 3), "run past the 17 data bytes (truncated file?)");
  expect(good + "xyz", "the data section has 23 bytes but the tensors cover 20");
  expect(raw_file("{}", "", 1LL << 40), "header length 1099511627776 exceeds the 2 bytes that follow");
  std::string corrupt = good;
  corrupt[8 + n / 2] = '\x01';
  expect(corrupt, "the header is not valid JSON");
  expect(raw_file("[1, 2]", ""), "the header does not start with '{'");

  const std::string data8(8, '\0');
  auto entry = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return fmt::format(R"({{"dtype":"{}","shape":{},"data_offsets":{}}})", dtype, shape, offsets);
  };
  expect(raw_file(R"({"a":)" + entry("BF16", "[4]", "[0,8]") + "}", data8), "tensor 'a': unsupported dtype 'BF16'");
  expect(raw_file(R"({"a":)" + entry("F32", "[3]", "[0,8]") + "}", data8),
         "tensor 'a': data_offsets [0, 8] span 8 bytes, but F32 elements of shape [3] need 12");
  expect(raw_file(R"({"a":)" + entry("F32", "[-2]", "[0,8]") + "}", data8), "shape entry -2 is not a non-negative");
  expect(raw_file(R"({"a":)" + entry("F32", "[2]", "[8,0]") + "}", data8), "data_offsets [8, 0] are reversed");
  expect(raw_file(R"({"a":)" + entry("F32", "[2]", "[0,8]") + R"(,"b":)" + entry("F32", "[1]", "[4,8]") + "}", data8),
         "tensor 'b' (bytes [4, 8]) overlaps 'a' (bytes [0, 8])");
  expect(raw_file(R"({"a":)" + entry("F32", "[1]", "[4,8]") + "}", data8), "bytes [0, 4] of the data belong to no tensor");
  expect(raw_file(R"({"a":)" + entry("F64", "[2]", "[0,16]") + "}", data8), "run past the 8 data bytes");
  expect(raw_file(R"({"a":)" + entry("F64", "[1]", "[0,8]") + R"(,"a":)" + entry("F64", "[1]", "[0,8]") + "}", data8),
         "the header names 'a' twice");
  expect(raw_file(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8],"extra":1}})", data8), "unknown field 'extra'");
  expect(raw_file(R"({"a":{"dtype":"F64","shape":[1]}})", data8), "'data_offsets' must be an array of two integers");
  expect(raw_file(R"({"__metadata__":{"epoch":3}})", ""), "__metadata__ value of 'epoch' is not a string");
  expect(raw_file(R"({"a":)" + entry("F64", "[1e30]", "[0,8]") + "}", data8), "is not a non-negative integer");
  expect(raw_file(R"({"a":)" + entry("F64", "[4294967296,4294967296,4294967296]", "[0,8]") + "}", data8), "is too large");
  CHECK_ERROR(nn::load_safetensors(dir.path.string()), "not a regular file");

  // Every truncation and every single-byte corruption either loads or throws xg::Error: nothing
  // else escapes (no parser exception, no bad_alloc from a lying length, no crash).
  size_t loaded = 0, rejected = 0;
  auto probe = [&](const std::string& bytes) {
    write_file(path, bytes);
    try {
      nn::load_safetensors(path);
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    }
  };
  for (size_t len = 0; len < good.size(); ++len) probe(good.substr(0, len));
  for (size_t i = 0; i < good.size(); ++i)
    for (char c : {'\0', '\xff', '9', '"', '}', ' '}) {
      std::string bad = good;
      bad[i] = c;
      probe(bad);
    }
  CHECK(rejected >= good.size());  // every truncation at least
  CHECK(loaded > 0);               // corrupted data bytes still parse: the format has no checksum

  // A header padded with spaces (as the reference writer does) is fine.
  write_file(path, raw_file(R"({"a":)" + entry("F64", "[1]", "[0,8]") + "}   ", data8));
  CHECK(nn::load_safetensors(path).tensors.size() == 1);
}

TEST_CASE("safetensors: writes are atomic; a failed write leaves the previous file intact") {
  TempDir dir;
  const std::string path = dir / "ck.safetensors";
  nn::save_safetensors(path, {{"v", from_vector<double>({1, 2})}});
  fs::create_directory(path + ".tmp");  // the temporary cannot be created: the write must fail
  CHECK_ERROR(nn::save_safetensors(path, {{"v", from_vector<double>({3, 4})}}), "save_safetensors: cannot create");
  fs::remove(path + ".tmp");
  CHECK(nn::load_safetensors(path).tensors[0].second.to_vector<double>() == std::vector<double>{1, 2});
  nn::save_safetensors(path, {{"v", from_vector<double>({5, 6})}});
  CHECK(nn::load_safetensors(path).tensors[0].second.to_vector<double>() == std::vector<double>{5, 6});
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK_ERROR(nn::save_safetensors(dir / "no/such/dir/ck.safetensors", {}), "save_safetensors: cannot create");
}

TEST_CASE("checkpoint: model, optimizer and schedule resume and continue exactly") {
  TempDir dir;
  manual_seed(3);
  Tensor x = randn({8, 3});
  Tensor y = randint(0, 2, {8});
  auto train = [&](Small& model, optim::Adam& opt, optim::StepLR& sched, int steps) {
    std::vector<float> losses;
    for (int s = 0; s < steps; ++s) {
      Tensor loss = cross_entropy(model.forward(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      sched.step();
      losses.push_back(loss.item<float>());
    }
    return losses;
  };
  manual_seed(4);
  Small a;
  optim::Adam opt_a(a.parameters(), {.lr = 0.01, .weight_decay = 1e-3});
  optim::StepLR sched_a(opt_a, 2, 0.5);
  train(a, opt_a, sched_a, 3);
  nn::save_safetensors(dir / "run.safetensors",
                       nn::concat(nn::concat(nn::prefixed("model.", a.state_dict()),
                                             nn::prefixed("optimizer.", opt_a.state_dict())),
                                  nn::prefixed("scheduler.", sched_a.state_dict())),
                       {{"epoch", "3"}});
  std::vector<float> continued = train(a, opt_a, sched_a, 4);

  manual_seed(99);  // a different initialisation, overwritten by the checkpoint
  Small b;
  optim::Adam opt_b(b.parameters(), {.lr = 0.01, .weight_decay = 1e-3});
  optim::StepLR sched_b(opt_b, 2, 0.5);
  nn::Safetensors file = nn::load_safetensors(dir / "run.safetensors");
  b.load_state_dict(file.with_prefix("model."));
  opt_b.load_state_dict(file.with_prefix("optimizer."));
  sched_b.load_state_dict(file.with_prefix("scheduler."));
  CHECK(file.metadata.at("epoch") == "3");
  CHECK(opt_b.lr() == 0.005);
  CHECK(sched_b.last_epoch() == 3);
  std::vector<float> resumed = train(b, opt_b, sched_b, 4);
  CHECK(resumed == continued);  // bit-exact losses
  auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) CHECK(bytes_of(pa[i].second) == bytes_of(pb[i].second));
  CHECK(opt_b.lr() == opt_a.lr());
}

// The format spec from Python's stdlib (tests/safetensors_check.py); skipped without python3.
TEST_CASE("safetensors: files cross-check with a stdlib Python reader and writer") {
  if (std::system("python3 -c 'import json, struct' > /dev/null 2>&1") != 0) {
    MESSAGE("python3 not available: skipping the cross-check");
    return;
  }
  TempDir dir;
  const std::string script = (fs::path(__FILE__).parent_path() / "safetensors_check.py").string();
  REQUIRE(fs::exists(script));

  // xgrad writes, Python reads.
  nn::save_safetensors(dir / "x.safetensors",
                       {{"w", from_vector<float>({0.25f, -1.5f, 3.0f, 1e-20f}, {2, 2})},
                        {"d", from_vector<double>({1.0 / 3.0})},
                        {"n", from_vector<int64_t>({-5, 1LL << 50})}},
                       {{"epoch", "12"}});
  std::string cmd = fmt::format("python3 '{}' read '{}' > '{}'", script, dir / "x.safetensors", dir / "x.json");
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto j = nlohmann::json::parse(read_file(dir / "x.json"));
  CHECK(j["metadata"]["epoch"] == "12");
  CHECK(j["tensors"]["w"]["dtype"] == "F32");
  CHECK(j["tensors"]["w"]["shape"] == nlohmann::json::array({2, 2}));
  CHECK(j["tensors"]["w"]["values"].get<std::vector<float>>() == std::vector<float>{0.25f, -1.5f, 3.0f, 1e-20f});
  CHECK(j["tensors"]["d"]["values"][0].get<double>() == 1.0 / 3.0);
  CHECK(j["tensors"]["n"]["values"].get<std::vector<int64_t>>() == std::vector<int64_t>{-5, 1LL << 50});

  // Python writes, xgrad reads.
  cmd = fmt::format("python3 '{}' write '{}'", script, dir / "py.safetensors");
  REQUIRE(std::system(cmd.c_str()) == 0);
  nn::Safetensors f = nn::load_safetensors(dir / "py.safetensors");
  CHECK(f.metadata == nn::Metadata{{"epoch", "4"}, {"format", "pt"}});
  REQUIRE(f.tensors.size() == 3);
  std::map<std::string, Tensor> by_name(f.tensors.begin(), f.tensors.end());
  CHECK(by_name.at("b.weight").shape() == Shape{2, 2});
  CHECK(by_name.at("b.weight").to_vector<double>() == std::vector<double>{1.5, -2.25, 1e-300, 3.0});
  CHECK(by_name.at("a.bias").to_vector<float>() == std::vector<float>{0.5f, -1.0f, 2.0f});
  CHECK(by_name.at("count").shape() == Shape{});
  CHECK(by_name.at("count").item<int64_t>() == -7);
}
