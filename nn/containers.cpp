// ModuleList and ModuleDict: checked access by index and by key.
#include "nn/containers.hpp"

#include <fmt/ranges.h>

namespace xg::nn {

std::shared_ptr<Module> ModuleList::operator[](size_t index) const {
  check(index < modules_.size(), "{}: index {} is out of range for {} modules", name(), index, modules_.size());
  return modules_[index];
}

bool ModuleDict::contains(const std::string& key) const {
  for (const auto& [k, m] : named_children())
    if (k == key) return true;
  return false;
}

std::vector<std::string> ModuleDict::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, m] : named_children()) out.push_back(k);
  return out;
}

std::shared_ptr<Module> ModuleDict::operator[](const std::string& key) const {
  for (const auto& [k, m] : named_children())
    if (k == key) return m;
  fail("ModuleDict: no module under key '{}' (keys: {})", key, fmt::join(keys(), ", "));
}

}  // namespace xg::nn
