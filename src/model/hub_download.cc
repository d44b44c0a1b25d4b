// Hub downloads: model-info listing, resumable verified transfers with libcurl, and the state
// files that make a second pull a no-op.
#include "model/hub_download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "core/json.h"
#include "core/units.h"

namespace kinfer::model {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kScheme = "hf://";
constexpr std::string_view kStateDir = ".kinfer-pull";

bool IsRepoNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

Status CheckRepoPart(std::string_view part, std::string_view what, std::string_view url) {
  if (part.empty())
    return InvalidArgumentError("{}: empty {}; expected hf://ORG/NAME[@REVISION]", url, what);
  if (part == "." || part == ".." || part.starts_with("--") || part.ends_with(".")) {
    return InvalidArgumentError("{}: '{}' is not a valid {}", url, part, what);
  }
  for (char c : part) {
    if (!IsRepoNameChar(c)) {
      return InvalidArgumentError(
          "{}: {} '{}' has the character '{}'; only letters, digits, "
          "'-', '_' and '.' are allowed",
          url, what, part, c);
    }
  }
  return Status::Ok();
}

// A relative path that stays inside the target directory.
Status CheckRelativePath(std::string_view p, std::string_view source) {
  if (p.empty()) return InvalidArgumentError("{}: a file has an empty name", source);
  if (p.front() == '/' || p.find('\\') != std::string_view::npos ||
      p.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("{}: refusing file name '{}': not a plain relative path", source,
                                p);
  }
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view seg = p.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") {
      return InvalidArgumentError("{}: refusing file name '{}': it has an empty, '.' or '..' part",
                                  source, p);
    }
    if (start == 0 && seg == kStateDir) {
      return InvalidArgumentError("{}: refusing file name '{}': {} is kinfer's own state folder",
                                  source, p, kStateDir);
    }
    start = end + 1;
  }
  return Status::Ok();
}

// Bracket class at pattern[pi] == '['. Sets `matched` and returns the index after ']', or
// npos when the class is not closed (then '[' is a literal, as in fnmatch).
size_t MatchClass(std::string_view pattern, size_t pi, char c, bool& matched) {
  size_t i = pi + 1;
  bool negate = false;
  if (i < pattern.size() && (pattern[i] == '!' || pattern[i] == '^')) {
    negate = true;
    ++i;
  }
  bool any = false;
  bool first = true;
  while (i < pattern.size() && (first || pattern[i] != ']')) {
    first = false;
    char lo = pattern[i];
    char hi = lo;
    if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      hi = pattern[i + 2];
      i += 3;
    } else {
      ++i;
    }
    if (c >= lo && c <= hi) any = true;
  }
  if (i >= pattern.size()) return std::string_view::npos;
  matched = any != negate;
  return i + 1;
}

class Sha {
 public:
  explicit Sha(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(ctx_.get(), md, nullptr);
  }
  void Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string HexDigest() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), out.data(), &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) {
      hex += kHex[out[i] >> 4];
      hex += kHex[out[i] & 15];
    }
    return hex;
  }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

// The digests a file is checked against, fed as its bytes arrive.
class Verifier {
 public:
  explicit Verifier(const HubFile& f) : file_(f) {
    if (!f.lfs_sha256.empty()) sha256_.emplace(EVP_sha256());
    if (f.lfs_sha256.empty() && f.blob_id.size() == 40 && f.size) {
      sha1_.emplace(EVP_sha1());
      std::string header = fmt::format("blob {}", *f.size);
      sha1_->Update(header.data(), header.size() + 1);  // with the terminating NUL, as git does
    }
  }
  void Update(const void* data, size_t n) {
    if (sha256_) sha256_->Update(data, n);
    if (sha1_) sha1_->Update(data, n);
    bytes_ += static_cast<int64_t>(n);
  }
  int64_t bytes() const { return bytes_; }

  Status Finish() {
    if (file_.size && bytes_ != *file_.size) {
      return DataLossError("{}: size mismatch: expected {} bytes, got {}", file_.path, *file_.size,
                           bytes_);
    }
    if (sha256_) {
      std::string got = sha256_->HexDigest();
      if (got != file_.lfs_sha256) {
        return DataLossError("{}: sha256 mismatch: expected {}, got {}", file_.path,
                             file_.lfs_sha256, got);
      }
    }
    if (sha1_) {
      std::string got = sha1_->HexDigest();
      if (got != file_.blob_id) {
        return DataLossError("{}: git blob sha1 mismatch: expected {}, got {}", file_.path,
                             file_.blob_id, got);
      }
    }
    return Status::Ok();
  }

 private:
  const HubFile& file_;
  std::optional<Sha> sha256_;
  std::optional<Sha> sha1_;
  int64_t bytes_ = 0;
};

Status HashExisting(const fs::path& p, Verifier& v) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return InternalError("{}: cannot read", p.string());
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) v.Update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return InternalError("{}: read error", p.string());
  return Status::Ok();
}

// What identifies a file's content: LFS sha256, else blob id, else size.
std::string ContentKey(const HubFile& f) {
  if (!f.lfs_sha256.empty()) return "sha256:" + f.lfs_sha256;
  if (!f.blob_id.empty()) return "blob:" + f.blob_id;
  return fmt::format("size:{}", f.size.value_or(-1));
}

int64_t MtimeNs(const fs::path& p) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  if (ec) return -1;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// The state file says "this content key was verified when the file had this size and mtime".
fs::path StatePath(const fs::path& dir, const HubFile& f) {
  return dir / kStateDir / (f.path + ".done");
}

bool IsUpToDate(const fs::path& dir, const HubFile& f) {
  std::error_code ec;
  fs::path target = dir / f.path;
  if (!fs::is_regular_file(target, ec)) return false;
  std::ifstream in(StatePath(dir, f));
  if (!in) return false;
  std::string key;
  int64_t size = -1;
  int64_t mtime = -1;
  in >> key >> size >> mtime;
  if (!in) return false;
  auto actual = static_cast<int64_t>(fs::file_size(target, ec));
  return !ec && key == ContentKey(f) && size == actual && mtime == MtimeNs(target) &&
         (!f.size || *f.size == actual);
}

Status WriteState(const fs::path& dir, const HubFile& f) {
  fs::path target = dir / f.path;
  fs::path state = StatePath(dir, f);
  std::error_code ec;
  fs::create_directories(state.parent_path(), ec);
  if (ec) return InternalError("{}: {}", state.parent_path().string(), ec.message());
  std::ofstream out(state, std::ios::trunc);
  out << ContentKey(f) << ' ' << fs::file_size(target, ec) << ' ' << MtimeNs(target) << '\n';
  if (!out) return InternalError("{}: cannot write", state.string());
  return Status::Ok();
}

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlFree>;
using SlistPtr = std::unique_ptr<curl_slist, SlistFree>;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// One HTTP exchange's outcome.
struct Response {
  CURLcode curl = CURLE_OK;
  std::string curl_error;
  long status = 0;
  std::string body;           // for non-2xx responses and for API calls
  std::string error_code;     // X-Error-Code header (the Hub's RepoNotFound, GatedRepo, ...)
  std::string content_range;  // of the last response
};

size_t HeaderCallback(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {  // a new response (after a redirect): forget the last one's
    r->error_code.clear();
    r->content_range.clear();
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) r->status = std::strtol(line.data() + sp + 1, nullptr, 10);
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() &&
           (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.remove_suffix(1);
    }
    if (name == "x-error-code") r->error_code = value;
    if (name == "content-range") r->content_range = value;
  }
  return size * n;
}

size_t BodyCallback(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  if (r->body.size() < (1 << 24)) r->body.append(data, size * n);
  return size * n;
}

SlistPtr CommonHeaders(const PullOptions& opts) {
  curl_slist* h = nullptr;
  h = curl_slist_append(h, "User-Agent: kinfer/" KINFER_VERSION);
  if (!opts.token.empty()) {
    h = curl_slist_append(h, ("Authorization: Bearer " + opts.token).c_str());
  }
  return SlistPtr(h);
}

void CommonOptions(CURL* c, const PullOptions& opts, const std::string& url, curl_slist* headers,
                   Response* r) {
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  // Never send the token to another host a redirect points at (the Hub redirects to a CDN).
  curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(opts.connect_timeout_s));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(opts.stall_timeout_s));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, HeaderCallback);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
}

// The server's own words from an error body: the Hub sends {"error": "..."}.
std::string ServerMessage(const Response& r) {
  auto j = ParseJson(r.body, "error body");
  if (j.ok() && j->is_object() && j->contains("error") && (*j)["error"].is_string()) {
    return (*j)["error"].get<std::string>();
  }
  std::string text = r.body.substr(0, 200);
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

Status HttpError(const PullOptions& opts, const Response& r, std::string_view what,
                 const std::string& url) {
  std::string detail = ServerMessage(r);
  std::string server = detail.empty() ? "" : fmt::format(" (server said: {})", detail);
  std::string repo = fmt::format("hf://{}@{}", opts.ref.repo_id, opts.ref.revision);
  switch (r.status) {
    case 401:
      if (opts.token.empty()) {
        return UnauthenticatedError(
            "{}: {}: 401 Unauthorized from {}{}: the repository is private or gated (or does not "
            "exist); set HF_TOKEN to an access token that can read it",
            repo, what, url, server);
      }
      return UnauthenticatedError(
          "{}: {}: 401 Unauthorized from {}{}: the token in HF_TOKEN was not accepted; check that "
          "it is valid and can read {}",
          repo, what, url, server, opts.ref.repo_id);
    case 403:
      return PermissionDeniedError(
          "{}: {}: 403 Forbidden from {}{}: the token may not read this repository (a gated model "
          "needs its terms accepted on the Hub first)",
          repo, what, url, server);
    case 404:
      if (r.error_code == "RevisionNotFound") {
        return NotFoundError("{}: revision '{}' not found at {}{}", repo, opts.ref.revision, url,
                             server);
      }
      if (r.error_code == "EntryNotFound") {
        return NotFoundError("{}: {}: file not found at {}{}", repo, what, url, server);
      }
      return NotFoundError("{}: {}: 404 Not Found at {}{}: check the repository name and revision",
                           repo, what, url, server);
    default:
      return UnavailableError("{}: {}: HTTP {} from {}{}", repo, what, r.status, url, server);
  }
}

bool IsRetryable(const Response& r) {
  if (r.curl != CURLE_OK) {
    switch (r.curl) {
      case CURLE_PARTIAL_FILE:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_OPERATION_TIMEDOUT:
      case CURLE_COULDNT_CONNECT:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
        return true;
      default:
        return false;
    }
  }
  return r.status == 429 || r.status >= 500;
}

Result<HubModelInfo> FetchModelInfo(const PullOptions& opts) {
  std::string url = fmt::format("{}/api/models/{}/revision/{}?blobs=true", opts.endpoint,
                                opts.ref.repo_id, UrlEncodePath(opts.ref.revision, false));
  SlistPtr headers = CommonHeaders(opts);
  for (int attempt = 1;; ++attempt) {
    CurlPtr c(curl_easy_init());
    if (!c) return InternalError("curl_easy_init failed");
    Response r;
    CommonOptions(c.get(), opts, url, headers.get(), &r);
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, BodyCallback);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &r);
    r.curl = curl_easy_perform(c.get());
    if (r.curl == CURLE_OK && r.status == 200) {
      return ParseModelInfo(r.body, url);
    }
    if (attempt < opts.max_attempts && IsRetryable(r)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250 << attempt));
      continue;
    }
    if (r.curl != CURLE_OK) {
      return UnavailableError("hf://{}: cannot list files at {}: {}", opts.ref.repo_id, url,
                              curl_easy_strerror(r.curl));
    }
    return HttpError(opts, r, "listing files", url);
  }
}

// Writes the body of a 200/206 answer to the partial file, hashing as it goes.
struct Transfer {
  Response response;
  FILE* out = nullptr;
  Verifier* verifier = nullptr;
  int64_t offset = 0;  // bytes already in the partial file when the request was sent
  bool started = false;
  bool restarted = false;  // asked for a range, got the whole file
  Status error;
  const PullOptions* opts = nullptr;
  PullProgress progress{};
  int64_t all_before = 0;
};

size_t FileCallback(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long status = t->response.status;
  if (status != 200 && status != 206) return BodyCallback(data, size, n, &t->response);
  if (!t->started) {
    t->started = true;
    if (status == 200 && t->offset > 0) {  // the server ignored the range: start over
      if (ftruncate(fileno(t->out), 0) != 0 || fseek(t->out, 0, SEEK_SET) != 0) {
        t->error = InternalError("cannot truncate the partial file");
        return 0;
      }
      t->restarted = true;
      t->offset = 0;
    }
    if (status == 206) {
      long long start = -1;
      if (std::sscanf(t->response.content_range.c_str(), "bytes %lld-", &start) != 1 ||
          start != t->offset) {
        t->error = DataLossError("asked for bytes from {}, got Content-Range '{}'", t->offset,
                                 t->response.content_range);
        return 0;
      }
    }
  }
  if (std::fwrite(data, 1, len, t->out) != len) {
    t->error = InternalError("write failed (disk full?)");
    return 0;
  }
  t->verifier->Update(data, len);
  return len;
}

int ProgressCallback(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->opts->on_progress && (t->response.status == 200 || t->response.status == 206)) {
    t->progress.file_done = t->offset + dlnow;
    if (t->progress.file_total < 0 && dltotal > 0) t->progress.file_total = t->offset + dltotal;
    t->progress.all_done = t->all_before + t->progress.file_done;
    t->opts->on_progress(t->progress);
  }
  return 0;
}

// Downloads one file into dir/.kinfer-pull/<path>.incomplete, resuming what is there, verifies
// it and moves it to dir/<path>.
Status DownloadFile(const PullOptions& opts, const std::string& commit, const HubFile& f,
                    PullProgress progress, int64_t all_before, int64_t* downloaded) {
  fs::path partial = opts.dir / kStateDir / (f.path + ".incomplete");
  fs::path target = opts.dir / f.path;
  std::error_code ec;
  fs::create_directories(partial.parent_path(), ec);
  if (!ec) fs::create_directories(target.parent_path(), ec);
  if (ec) return InternalError("{}: {}", target.parent_path().string(), ec.message());

  std::string url = fmt::format("{}/{}/resolve/{}/{}", opts.endpoint, opts.ref.repo_id,
                                UrlEncodePath(commit, false), UrlEncodePath(f.path, true));
  SlistPtr common = CommonHeaders(opts);

  auto verifier = std::make_unique<Verifier>(f);
  int64_t have = fs::exists(partial, ec) ? static_cast<int64_t>(fs::file_size(partial, ec)) : 0;
  if (f.size && have > *f.size) {  // cannot be a prefix of this file: start over
    fs::remove(partial, ec);
    have = 0;
  }
  if (have > 0) {
    if (opts.on_message) {
      opts.on_message(fmt::format("{}: resuming at {} of {}", f.path, FormatBytes(have),
                                  f.size ? FormatBytes(*f.size) : "?"));
    }
    KINFER_RETURN_IF_ERROR(HashExisting(partial, *verifier));
  }

  for (int attempt = 1;; ++attempt) {
    int64_t offset = verifier->bytes();
    if (f.size && offset == *f.size) break;  // everything is already here
    std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(partial.c_str(), "ab"), &std::fclose);
    if (!out) return InternalError("{}: cannot open for writing", partial.string());

    Transfer t;
    t.out = out.get();
    t.verifier = verifier.get();
    t.offset = offset;
    t.opts = &opts;
    t.progress = progress;
    t.progress.file_total = f.size.value_or(-1);
    t.all_before = all_before;
    SlistPtr headers(nullptr);
    curl_slist* h = nullptr;
    for (curl_slist* it = common.get(); it; it = it->next) h = curl_slist_append(h, it->data);
    if (offset > 0) h = curl_slist_append(h, fmt::format("Range: bytes={}-", offset).c_str());
    headers.reset(h);

    CurlPtr c(curl_easy_init());
    if (!c) return InternalError("curl_easy_init failed");
    CommonOptions(c.get(), opts, url, headers.get(), &t.response);
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, FileCallback);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c.get(), CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c.get(), CURLOPT_XFERINFOFUNCTION, ProgressCallback);
    curl_easy_setopt(c.get(), CURLOPT_XFERINFODATA, &t);
    t.response.curl = curl_easy_perform(c.get());
    out.reset();
    if (t.restarted) {  // the hashes covered bytes that are gone now
      verifier = std::make_unique<Verifier>(f);
      KINFER_RETURN_IF_ERROR(HashExisting(partial, *verifier));
    }
    *downloaded += verifier->bytes() - t.offset;
    if (!t.error.ok()) return t.error.WithPrefix(f.path);
    const Response& r = t.response;
    if (r.curl == CURLE_OK && (r.status == 200 || r.status == 206)) break;
    if (r.status == 416 && f.size && verifier->bytes() == *f.size) break;
    bool retry = IsRetryable(r) && attempt < opts.max_attempts;
    if (r.curl != CURLE_OK) {
      std::string why = fmt::format(
          "{}: download interrupted at {} of {} ({})", f.path, FormatBytes(verifier->bytes()),
          f.size ? FormatBytes(*f.size) : "?", curl_easy_strerror(r.curl));
      if (!retry) {
        return UnavailableError(
            "{} after {} attempts; the partial file is kept in {}: run the same command again "
            "to resume",
            why, attempt, (opts.dir / kStateDir).string());
      }
      if (opts.on_message) opts.on_message(why + "; retrying");
    } else if (!retry) {
      return HttpError(opts, r, f.path, url);
    } else if (opts.on_message) {
      opts.on_message(fmt::format("{}: HTTP {}; retrying", f.path, r.status));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250 << attempt));
  }

  Status verified = verifier->Finish();
  if (!verified.ok()) {
    fs::remove(partial, ec);
    return Status(verified.code(),
                  verified.message() +
                      "; the download is corrupt (or the server changed the file) and was deleted");
  }
  fs::rename(partial, target, ec);
  if (ec) return InternalError("{}: cannot move into place: {}", target.string(), ec.message());
  return WriteState(opts.dir, f);
}

// Serializes pulls into one directory (replicas sharing a volume, say).
class DirLock {
 public:
  static Result<DirLock> Acquire(const fs::path& dir) {
    fs::path p = dir / kStateDir / "lock";
    int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return InternalError("{}: cannot open the lock file", p.string());
    if (::flock(fd, LOCK_EX) != 0) {
      ::close(fd);
      return InternalError("{}: cannot lock", p.string());
    }
    return DirLock(fd);
  }
  DirLock(DirLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  DirLock& operator=(DirLock&&) = delete;
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace

Result<HubRef> ParseHubUrl(std::string_view url) {
  if (!url.starts_with(kScheme)) {
    return InvalidArgumentError("{}: expected hf://ORG/NAME[@REVISION]", url);
  }
  std::string_view rest = url.substr(kScheme.size());
  HubRef ref;
  size_t at = rest.find('@');
  if (at != std::string_view::npos) {
    std::string_view rev = rest.substr(at + 1);
    if (rev.empty()) return InvalidArgumentError("{}: empty revision after '@'", url);
    for (char c : rev) {
      if (static_cast<unsigned char>(c) <= ' ' || c == '\\' || c == '?' || c == '#') {
        return InvalidArgumentError("{}: revision '{}' has a character that is not allowed", url,
                                    rev);
      }
    }
    if (rev.find("..") != std::string_view::npos) {
      return InvalidArgumentError("{}: revision '{}' may not contain '..'", url, rev);
    }
    ref.revision = std::string(rev);
    rest = rest.substr(0, at);
  }
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return InvalidArgumentError("{}: expected hf://ORG/NAME[@REVISION], got no '/' in '{}'", url,
                                rest);
  }
  std::string_view org = rest.substr(0, slash);
  std::string_view name = rest.substr(slash + 1);
  if (!name.empty() && name.back() == '/') name.remove_suffix(1);
  KINFER_RETURN_IF_ERROR(CheckRepoPart(org, "organization", url));
  if (name.find('/') != std::string_view::npos) {
    return InvalidArgumentError("{}: expected hf://ORG/NAME[@REVISION], got more than one '/'",
                                url);
  }
  KINFER_RETURN_IF_ERROR(CheckRepoPart(name, "model name", url));
  ref.repo_id = fmt::format("{}/{}", org, name);
  return ref;
}

bool GlobMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0;
  size_t t = 0;
  size_t star_p = std::string_view::npos;
  size_t star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      char pc = pattern[p];
      if (pc == '*') {
        star_p = p++;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++t;
        continue;
      }
      if (pc == '[') {
        bool matched = false;
        size_t next = MatchClass(pattern, p, text[t], matched);
        if (next != std::string_view::npos) {
          if (matched) {
            p = next;
            ++t;
            continue;
          }
        } else if (text[t] == '[') {
          ++p;
          ++t;
          continue;
        }
      } else if (pc == text[t]) {
        ++p;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool IsIncluded(const std::vector<std::string>& patterns, std::string_view path) {
  if (patterns.empty()) return true;
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return GlobMatch(p, path); });
}

std::string UrlEncodePath(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<HubModelInfo> ParseModelInfo(std::string_view json, std::string_view source) {
  KINFER_ASSIGN_OR_RETURN(Json doc, ParseJson(json, source));
  if (!doc.is_object()) return InvalidArgumentError("{}: expected a JSON object", source);
  HubModelInfo info;
  KINFER_ASSIGN_OR_RETURN(info.commit, JsonString(doc, "sha", "", source));
  if (!doc.contains("siblings") || !doc["siblings"].is_array()) {
    return InvalidArgumentError("{}: field 'siblings': expected an array of files", source);
  }
  for (size_t i = 0; i < doc["siblings"].size(); ++i) {
    const Json& s = doc["siblings"][i];
    std::string where = fmt::format("{}: siblings[{}]", source, i);
    if (!s.is_object()) return InvalidArgumentError("{}: expected an object", where);
    HubFile f;
    KINFER_ASSIGN_OR_RETURN(f.path, JsonString(s, "rfilename", where));
    KINFER_RETURN_IF_ERROR(CheckRelativePath(f.path, where));
    KINFER_ASSIGN_OR_RETURN(f.size, JsonOptInt(s, "size", where));
    KINFER_ASSIGN_OR_RETURN(f.blob_id, JsonString(s, "blobId", "", where));
    if (s.contains("lfs") && s["lfs"].is_object()) {
      const Json& lfs = s["lfs"];
      KINFER_ASSIGN_OR_RETURN(f.lfs_sha256, JsonString(lfs, "sha256", where + ".lfs"));
      if (f.lfs_sha256.size() != 64) {
        return InvalidArgumentError("{}.lfs: field 'sha256': expected 64 hex digits, got '{}'",
                                    where, f.lfs_sha256);
      }
      KINFER_ASSIGN_OR_RETURN(auto lfs_size, JsonOptInt(lfs, "size", where + ".lfs"));
      if (lfs_size) f.size = lfs_size;
    }
    if (f.size && *f.size < 0) {
      return InvalidArgumentError("{}: negative size {}", where, *f.size);
    }
    info.files.push_back(std::move(f));
  }
  return info;
}

Result<PullSummary> PullModel(const PullOptions& opts) {
  GlobalInit();
  std::error_code ec;
  fs::create_directories(opts.dir / kStateDir, ec);
  if (ec) return InternalError("{}: cannot create: {}", opts.dir.string(), ec.message());
  KINFER_ASSIGN_OR_RETURN(DirLock lock, DirLock::Acquire(opts.dir));

  KINFER_ASSIGN_OR_RETURN(HubModelInfo info, FetchModelInfo(opts));
  PullSummary summary;
  summary.commit = info.commit.empty() ? opts.ref.revision : info.commit;

  std::vector<const HubFile*> selected;
  for (const HubFile& f : info.files) {
    if (IsIncluded(opts.include, f.path)) selected.push_back(&f);
  }
  if (selected.empty()) {
    std::string patterns;
    for (const auto& p : opts.include) patterns += (patterns.empty() ? "" : ", ") + p;
    return NotFoundError("hf://{}@{}: no file matches --include {} (the revision has {} files)",
                         opts.ref.repo_id, opts.ref.revision, patterns, info.files.size());
  }
  summary.files_selected = static_cast<int>(selected.size());
  int64_t all_total = 0;
  for (const HubFile* f : selected) all_total += f->size.value_or(0);

  int64_t all_done = 0;
  for (size_t i = 0; i < selected.size(); ++i) {
    const HubFile& f = *selected[i];
    PullProgress progress{f.path,   static_cast<int>(i + 1), static_cast<int>(selected.size()),
                          0,        f.size.value_or(-1),     all_done,
                          all_total};
    if (IsUpToDate(opts.dir, f)) {
      ++summary.files_up_to_date;
    } else {
      // A file that is already there (copied by hand, or pulled before the state files existed)
      // is kept if it verifies.
      fs::path target = opts.dir / f.path;
      bool kept = false;
      if (fs::is_regular_file(target, ec) &&
          (!f.size || static_cast<int64_t>(fs::file_size(target, ec)) == *f.size)) {
        Verifier v(f);
        if (HashExisting(target, v).ok() && v.Finish().ok()) {
          KINFER_RETURN_IF_ERROR(WriteState(opts.dir, f));
          ++summary.files_up_to_date;
          kept = true;
        }
      }
      if (!kept) {
        KINFER_RETURN_IF_ERROR(
            DownloadFile(opts, summary.commit, f, progress, all_done, &summary.bytes_downloaded));
        ++summary.files_downloaded;
      }
    }
    all_done += f.size.value_or(0);
    if (opts.on_progress) {
      progress.file_done = f.size.value_or(0);
      progress.all_done = all_done;
      opts.on_progress(progress);
    }
  }
  return summary;
}

}  // namespace kinfer::model
