// The global random generator behind randn, rand, dropout and initialisers.
#pragma once

#include <cstdint>
#include <random>

namespace xg {

std::mt19937_64& generator();  // seeded by manual_seed; not shared across threads safely
void manual_seed(uint64_t seed);

}  // namespace xg
