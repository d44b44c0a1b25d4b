// Encode throughput of one tokenizer on one text file, single thread: the kinfer side of
// bench/tokenizer_bench.py, which runs Hugging Face tokenizers on the same text.
//
//   tokenizer_encode_bench TOKENIZER TEXT_FILE [REPEAT] [whole|lines]
//   -> {"tokens": N, "bytes": B, "seconds": [t1, t2, ...], "ids_fnv1a": H}
// "lines" encodes each line (without its '\n') as its own request, like a batch of prompts.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "core/mapped_file.h"
#include "tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    fmt::print(stderr, "usage: {} TOKENIZER TEXT_FILE [REPEAT]\n", argv[0]);
    return 2;
  }
  auto tok = kinfer::tokenizer::Tokenizer::Load(argv[1]);
  if (!tok.ok()) {
    fmt::print(stderr, "error: {}\n", tok.status().ToString());
    return 1;
  }
  auto text = kinfer::ReadFileToString(argv[2]);
  if (!text.ok()) {
    fmt::print(stderr, "error: {}\n", text.status().ToString());
    return 1;
  }
  const int repeat = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;
  const bool lines = argc > 4 && std::string(argv[4]) == "lines";
  std::vector<std::string_view> inputs;
  if (lines) {
    std::string_view rest(*text);
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      inputs.push_back(rest.substr(0, nl));
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
  } else {
    inputs.push_back(*text);
  }
  std::vector<double> seconds;
  std::vector<int32_t> ids;
  for (int r = 0; r < repeat; ++r) {
    ids.clear();
    const auto t0 = std::chrono::steady_clock::now();
    for (std::string_view in : inputs) {
      auto part = (*tok)->Encode(in, /*add_special_tokens=*/false, /*parse_special=*/false);
      ids.insert(ids.end(), part.begin(), part.end());
    }
    const auto t1 = std::chrono::steady_clock::now();
    seconds.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  uint64_t h = 1469598103934665603ULL;  // FNV-1a over the ids, to check both sides agree
  for (int32_t id : ids) {
    h = (h ^ static_cast<uint32_t>(id)) * 1099511628211ULL;
  }
  fmt::print("{{\"tokens\": {}, \"bytes\": {}, \"seconds\": [{}], \"ids_fnv1a\": {}}}\n",
             ids.size(), text->size(), fmt::join(seconds, ", "), h);
  return 0;
}
