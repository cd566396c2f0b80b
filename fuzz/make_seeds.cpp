// Writes the fuzzers' seed corpus: small valid .safetensors and CIFAR-10 files.
//   make_seeds SAFETENSORS_DIR CIFAR_DIR
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "data/cifar10.hpp"
#include "nn/checkpoint.hpp"
#include "xgrad.hpp"

namespace fs = std::filesystem;
using namespace xg;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_seeds SAFETENSORS_DIR CIFAR_DIR\n");
    return 2;
  }
  const fs::path st = argv[1], cifar = argv[2];
  fs::create_directories(st);
  fs::create_directories(cifar);

  nn::save_safetensors(st / "one.safetensors", {{"w", from_vector<float>({1.5f, -2.0f, 0.25f}, {3})}});
  nn::save_safetensors(st / "dtypes.safetensors",
                       {{"fc.weight", from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3})},
                        {"fc.bias", from_vector<double>({0.5, -0.5}, {2})},
                        {"bn.num_batches_tracked", from_vector<int64_t>({7}, {})}},
                       {{"epoch", "3"}, {"model", "twolayer"}});
  nn::save_safetensors(st / "empty.safetensors", {{"e", zeros({0, 4})}, {"s", ones({}, Dtype::f64)}});
  nn::save_safetensors(st / "metadata_only.safetensors", {}, {{"format", "pt"}});

  // CIFAR: one record, and three records with every label byte value at the edge (0 and 9).
  for (int count : {1, 3}) {
    std::vector<char> bytes;
    for (int r = 0; r < count; ++r) {
      bytes.push_back(static_cast<char>(r == 1 ? 9 : r));
      for (int64_t p = 0; p < data::kImageBytes; ++p) bytes.push_back(static_cast<char>((7 * r + 3 * p) & 255));
    }
    std::ofstream(cifar / fmt::format("records_{}.bin", count), std::ios::binary).write(bytes.data(), bytes.size());
  }
  return 0;
}
