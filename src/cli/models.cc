// `kinfer models --url URL`: list the models an OpenAI-compatible server serves (GET /v1/models).
// The image has no shell or curl, so the Helm chart's `helm test` pod runs this to check that a
// release answers through its Service.
#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <memory>

#include "cli/commands.h"
#include "core/json.h"

namespace kinfer::cli {
namespace {

struct ModelsArgs {
  std::string url;
  std::string api_key_file;
  std::vector<std::string> expect;
  bool insecure = false;
  int timeout_s = 10;
};

size_t Append(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

Result<std::string> FirstKey(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("{}: cannot read the API key file", path);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) return line;
  }
  return InvalidArgumentError("{}: no API key in the file", path);
}

int RunModels(const ModelsArgs& args) {
  std::string base = args.url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string url = base + "/v1/models";
  std::string auth;
  if (!args.api_key_file.empty()) {
    auto key = FirstKey(args.api_key_file);
    if (!key.ok()) {
      fmt::print(stderr, "error: {}\n", key.status().message());
      return 1;
    }
    auth = "Authorization: Bearer " + *key;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::unique_ptr<CURL, void (*)(CURL*)> c(curl_easy_init(), curl_easy_cleanup);
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(nullptr, curl_slist_free_all);
  if (!auth.empty()) headers.reset(curl_slist_append(nullptr, auth.c_str()));
  std::string body;
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT, static_cast<long>(args.timeout_s));
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &body);
  if (args.insecure) {
    curl_easy_setopt(c.get(), CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c.get(), CURLOPT_SSL_VERIFYHOST, 0L);
  }
  CURLcode rc = curl_easy_perform(c.get());
  if (rc != CURLE_OK) {
    fmt::print(stderr, "error: GET {}: {}\n", url, curl_easy_strerror(rc));
    return 1;
  }
  long status = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    fmt::print(stderr, "error: GET {}: HTTP {}: {}\n", url, status, body.substr(0, 300));
    return 1;
  }
  auto doc = ParseJson(body, url);
  if (!doc.ok() || !doc->is_object() || !doc->contains("data") || !(*doc)["data"].is_array()) {
    fmt::print(stderr,
               "error: GET {}: expected {{\"object\": \"list\", \"data\": [...]}}, got {}\n", url,
               body.substr(0, 300));
    return 1;
  }
  std::vector<std::string> ids;
  for (const Json& m : (*doc)["data"]) {
    if (m.is_object() && m.contains("id") && m["id"].is_string()) {
      ids.push_back(m["id"].get<std::string>());
    }
  }
  for (const auto& id : ids) fmt::print("{}\n", id);
  for (const auto& want : args.expect) {
    if (std::find(ids.begin(), ids.end(), want) == ids.end()) {
      fmt::print(stderr, "error: {} does not list model '{}'\n", url, want);
      return 1;
    }
  }
  return 0;
}

}  // namespace

void AddModelsCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("models", "List the models an OpenAI-compatible server serves");
  auto args = std::make_shared<ModelsArgs>();
  cmd->add_option("--url", args->url, "Server base URL (http://HOST:PORT)")->required();
  cmd->add_option("--api-key-file", args->api_key_file, "File whose first line is the API key");
  cmd->add_option("--expect", args->expect, "Fail unless this model is listed; repeatable")
      ->allow_extra_args(false);
  cmd->add_flag("--insecure", args->insecure, "Do not verify the server's TLS certificate");
  cmd->add_option("--timeout", args->timeout_s, "Seconds to wait for the answer");
  cmd->callback([args] { ExitCode() = RunModels(*args); });
}

}  // namespace kinfer::cli
