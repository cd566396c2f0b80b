// The doctest runner for xgrad's test suite. It runs with the process settings of xgrad's own
// commands (configure_process), as the code under test is used there.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "autograd/process.hpp"

int main(int argc, char** argv) {
  xg::configure_process();
  return doctest::Context(argc, argv).run();
}
