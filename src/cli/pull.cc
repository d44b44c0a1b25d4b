// `kinfer pull hf://ORG/NAME[@REV] --dir DIR`: fetch a model repository from the Hugging Face
// Hub (or a mirror named by HF_ENDPOINT), with a progress bar, resume and verification. It is
// what the Helm chart's init container runs to fill an emptyDir before `kinfer serve` starts.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "core/units.h"
#include "model/hub_download.h"

namespace kinfer::cli {
namespace {

// Redraws one line on a terminal; in a log (a pod's, say) prints a line per file and every 10%.
class ProgressBar {
 public:
  ProgressBar() : tty_(isatty(STDERR_FILENO) == 1) {}

  void Update(const model::PullProgress& p) {
    auto now = std::chrono::steady_clock::now();
    bool file_done = p.file_total >= 0 && p.file_done >= p.file_total;
    if (tty_) {
      if (!file_done && now - last_ < std::chrono::milliseconds(100)) return;
      last_ = now;
      double frac = p.all_total > 0 ? static_cast<double>(p.all_done) / p.all_total : 0;
      int fill = static_cast<int>(frac * 30);
      fmt::print(stderr, "\r\033[K[{:=<{}}{: <{}}] {:5.1f}%  {}/{}  {}  {} / {}", "", fill, "",
                 30 - fill, frac * 100, p.file_index, p.file_count, p.file,
                 FormatBytes(p.file_done), p.file_total >= 0 ? FormatBytes(p.file_total) : "?");
      if (file_done && p.file_index == p.file_count) fmt::print(stderr, "\n");
      return;
    }
    int decile = p.file_total > 0 ? static_cast<int>(10 * p.file_done / p.file_total) : 0;
    if (p.file_index != file_ || (decile != decile_ && decile < 10)) {
      file_ = p.file_index;
      decile_ = decile;
      fmt::print(stderr, "[{}/{}] {} {} / {} ({}%)\n", p.file_index, p.file_count, p.file,
                 FormatBytes(p.file_done), p.file_total >= 0 ? FormatBytes(p.file_total) : "?",
                 decile * 10);
    }
  }

  void Message(std::string_view m) {
    if (tty_) fmt::print(stderr, "\r\033[K");
    fmt::print(stderr, "{}\n", m);
  }

 private:
  bool tty_;
  std::chrono::steady_clock::time_point last_{};
  int file_ = 0;
  int decile_ = -1;
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

struct PullArgs {
  std::string url;
  std::vector<std::string> include;
  std::string dir;
  bool quiet = false;
};

int RunPull(const PullArgs& args) {
  auto ref = model::ParseHubUrl(args.url);
  if (!ref.ok()) {
    fmt::print(stderr, "error: {}\n", ref.status().message());
    return 2;
  }
  model::PullOptions opts;
  opts.ref = *ref;
  opts.include = args.include;
  opts.dir = args.dir;
  if (std::string e = Env("HF_ENDPOINT"); !e.empty()) {
    while (!e.empty() && e.back() == '/') e.pop_back();
    opts.endpoint = e;
  }
  opts.token = Env("HF_TOKEN");
  auto bar = std::make_shared<ProgressBar>();
  if (!args.quiet) {
    opts.on_progress = [bar](const model::PullProgress& p) { bar->Update(p); };
  }
  opts.on_message = [bar](std::string_view m) { bar->Message(m); };

  auto summary = model::PullModel(opts);
  if (!summary.ok()) {
    bar->Message(fmt::format("error: {}", summary.status().message()));
    return 1;
  }
  const model::PullSummary& s = *summary;
  if (s.files_downloaded == 0) {
    fmt::print(stderr, "hf://{} at {}: all {} files already in {}, nothing to download\n",
               opts.ref.repo_id, s.commit, s.files_selected, args.dir);
  } else {
    fmt::print(stderr, "hf://{} at {}: downloaded {} of {} files ({}) into {}\n", opts.ref.repo_id,
               s.commit, s.files_downloaded, s.files_selected, FormatBytes(s.bytes_downloaded),
               args.dir);
  }
  return 0;
}

}  // namespace

void AddPullCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "pull",
      "Download a model repository from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN): resumable, "
      "verified, idempotent");
  auto args = std::make_shared<PullArgs>();
  cmd->add_option("model", args->url, "hf://ORG/NAME[@REVISION] (revision defaults to main)")
      ->required();
  cmd->add_option("--include", args->include,
                  "Only files matching this glob ('*.gguf', 'Q4_K_M/*'); repeatable")
      ->allow_extra_args(false);
  cmd->add_option("--dir", args->dir, "Directory to download into")->required();
  cmd->add_flag("--quiet", args->quiet, "No progress bar");
  cmd->callback([args] { ExitCode() = RunPull(*args); });
}

}  // namespace kinfer::cli
