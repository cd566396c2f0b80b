// Writes the ONNX consumer checks' inputs: for every test model (tests/onnx_models.hpp), NAME.onnx
// exported with a batch of 2, and NAME.io.safetensors holding a random batch of 3 ("input") and
// xgrad's eval-mode output for it ("output"): the consumers must reproduce it with a batch size the
// export never saw. Usage: onnx_export_models OUT_DIR
#include <filesystem>

#include "onnx_models.hpp"

int main(int argc, char** argv) {
  using namespace xg;
  if (argc != 2) {
    fmt::print(stderr, "usage: onnx_export_models OUT_DIR\n");
    return 2;
  }
  configure_process();
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  try {
    manual_seed(19);
    for (auto& [name, model] : onnx_test::export_test_models()) {
      const std::string path = (dir / (name + ".onnx")).string();
      onnx::export_model(*model, rand(onnx_test::example_shape(name, 2)), path);
      Tensor input = rand(onnx_test::example_shape(name, 3));
      model->eval();
      NoGradGuard no_grad;
      Tensor output = (*model)(input);
      nn::save_safetensors((dir / (name + ".io.safetensors")).string(), {{"input", input}, {"output", output}});
      fmt::print("{}: {} bytes, output {}\n", path, std::filesystem::file_size(path), output.shape());
    }
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
