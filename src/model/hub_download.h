// Downloads a model repository from a Hugging Face Hub-compatible server (`kinfer pull`):
// resumable, verified (LFS sha256, git blob sha1, sizes) and idempotent.
//
//   KINFER_ASSIGN_OR_RETURN(HubRef ref, ParseHubUrl("hf://Qwen/Qwen2.5-0.5B-Instruct@main"));
//   PullOptions opts{.ref = ref, .dir = "/models"};
//   KINFER_ASSIGN_OR_RETURN(PullSummary s, PullModel(opts));
//
// The server speaks the Hub's REST layout: `GET {endpoint}/api/models/{repo}/revision/{rev}`
// ?blobs=true` lists the files ("siblings", with sizes, blob ids and LFS sha256), and
// `GET {endpoint}/{repo}/resolve/{commit}/{file}` serves each file (redirects and range
// requests allowed).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kinfer::model {

// `hf://ORG/NAME[@REVISION]`. The revision defaults to "main"; it may be a branch, a tag, a
// commit or a ref with slashes (`refs/pr/1`).
struct HubRef {
  std::string repo_id;  // "ORG/NAME"
  std::string revision = "main";

  bool operator==(const HubRef&) const = default;
};

// Parses `hf://ORG/NAME[@REV]`. Errors name what is wrong ("expected hf://ORG/NAME[@REVISION]").
Result<HubRef> ParseHubUrl(std::string_view url);

// Shell-style glob as Python's fnmatch: `*` any run of characters (including '/'), `?` one
// character, `[abc]`, `[a-z]` and `[!abc]` character classes. "*.gguf" matches "q4/m.gguf".
bool GlobMatch(std::string_view pattern, std::string_view text);

// True when `path` matches one of `patterns`, or when there are none.
bool IsIncluded(const std::vector<std::string>& patterns, std::string_view path);

// One file of a repository revision, as the model-info call lists it.
struct HubFile {
  std::string path;  // relative, '/'-separated
  std::optional<int64_t> size;
  std::string blob_id;     // git blob sha1 of the file (of the LFS pointer for LFS files)
  std::string lfs_sha256;  // sha256 of the content, for LFS files; empty otherwise
};

struct HubModelInfo {
  std::string commit;  // the revision resolved to a commit sha ("" if the server gave none)
  std::vector<HubFile> files;
};

// Parses the model-info JSON. `source` names it in errors. Rejects file names that are absolute
// or climb out of the target directory ("..").
Result<HubModelInfo> ParseModelInfo(std::string_view json, std::string_view source);

// Percent-encodes `s` for a URL path; '/' is kept when `keep_slash`.
std::string UrlEncodePath(std::string_view s, bool keep_slash);

// Progress of one pull, for a progress bar. Called often; must be cheap.
struct PullProgress {
  std::string_view file;
  int file_index;  // 1-based
  int file_count;
  int64_t file_done;
  int64_t file_total;  // -1 when unknown
  int64_t all_done;    // bytes of every selected file, including ones already present
  int64_t all_total;
};

struct PullOptions {
  HubRef ref;
  std::vector<std::string> include;  // glob patterns; empty = every file
  std::filesystem::path dir;
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT
  std::string token;                                // HF_TOKEN; empty = anonymous
  int max_attempts = 4;                             // per file, resuming after a dropped connection
  int connect_timeout_s = 30;
  int stall_timeout_s = 60;  // abort a transfer slower than 1 byte/s for this long
  std::function<void(const PullProgress&)> on_progress;
  std::function<void(std::string_view)> on_message;  // one line for the user ("resuming ...")
};

struct PullSummary {
  std::string commit;
  int files_selected = 0;
  int files_downloaded = 0;
  int files_up_to_date = 0;
  int64_t bytes_downloaded = 0;
};

// Downloads every selected file of `opts.ref` into `opts.dir`. Partial downloads live in
// `dir/.kinfer-pull/` and are resumed by the next call; a finished file is verified before it
// is moved into place, and recorded there so that a second pull of the same revision downloads
// nothing.
Result<PullSummary> PullModel(const PullOptions& opts);

}  // namespace kinfer::model
