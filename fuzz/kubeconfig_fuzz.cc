// libFuzzer target: the kubeconfig parser (YAML through yaml-cpp) must turn any byte string into
// a config or a clear error, never a crash, a hang or an exception escaping it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "k8s/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto kc = kinfer::k8s::ParseKubeconfig(text, "fuzz.kubeconfig");
  if (!kc.ok()) return 0;
  size_t n = 0;
  for (const auto& [name, c] : kc->clusters) n += name.size() + c.server.size();
  for (const auto& [name, u] : kc->users) {
    n += name.size() + u.token.size();
    (void)kinfer::k8s::DecodeBase64(u.client_key_data, "client-key-data");
  }
  for (const auto& [name, c] : kc->contexts) n += c.cluster.size() + c.user.size();
  volatile size_t sink = n;
  (void)sink;
  return 0;
}
