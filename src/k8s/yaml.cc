#include "k8s/yaml.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <regex>

#include <yaml-cpp/yaml.h>

namespace kinfer::k8s {
namespace {

constexpr int kMaxDepth = 200;

bool IsNull(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> AsBool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

std::optional<Json> AsNumber(const std::string& s) {
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (std::regex_match(s, kInt)) {
    errno = 0;
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == 0) return Json(static_cast<int64_t>(v));
    return Json(std::strtod(s.c_str(), nullptr));
  }
  if (std::regex_match(s, kFloat)) {
    double v = std::strtod(s.c_str(), nullptr);
    if (std::isfinite(v)) return Json(v);
  }
  return std::nullopt;
}

Result<Json> Convert(const YAML::Node& n, std::string_view source, int depth) {
  if (depth > kMaxDepth) {
    return InvalidArgumentError("{}: line {}: nested deeper than {} levels", source,
                                n.Mark().line + 1, kMaxDepth);
  }
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return Json(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str") return Json(s);  // quoted
      if (IsNull(s)) return Json(nullptr);
      if (auto b = AsBool(s)) return Json(*b);
      if (auto num = AsNumber(s)) return *num;
      return Json(s);
    }
    case YAML::NodeType::Sequence: {
      Json arr = Json::array();
      for (const YAML::Node& item : n) {
        KINFER_ASSIGN_OR_RETURN(Json v, Convert(item, source, depth + 1));
        arr.push_back(std::move(v));
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      Json obj = Json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) {
          return InvalidArgumentError("{}: line {}: a mapping key must be a scalar", source,
                                      kv.first.Mark().line + 1);
        }
        KINFER_ASSIGN_OR_RETURN(Json v, Convert(kv.second, source, depth + 1));
        obj[kv.first.Scalar()] = std::move(v);
      }
      return obj;
    }
  }
  return Json(nullptr);
}

// Whether a string must be quoted to read back as a string.
bool NeedsQuotes(const std::string& s) {
  if (IsNull(s) || AsBool(s) || AsNumber(s)) return true;
  static const char* kYaml11[] = {"yes", "Yes", "YES", "no", "No", "NO", "on", "On",   "ON",
                                  "off", "Off", "OFF", "y",  "Y",  "n",  "N",  ".inf", ".nan"};
  for (const char* w : kYaml11) {
    if (s == w) return true;
  }
  // Octal and hex as YAML 1.1 readers take them, and sexagesimal-looking values.
  if (s.size() > 1 && s[0] == '0' &&
      s.find_first_not_of("0123456789_xXoabcdefABCDEF") == std::string::npos) {
    return true;
  }
  return false;
}

void Emit(YAML::Emitter& out, const Json& v) {
  switch (v.type()) {
    case Json::value_t::object:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (const auto& [k, item] : v.items()) {
        out << YAML::Key;
        if (NeedsQuotes(k)) out << YAML::DoubleQuoted;
        out << k << YAML::Value;
        Emit(out, item);
      }
      out << YAML::EndMap;
      return;
    case Json::value_t::array:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      out << YAML::BeginSeq;
      for (const Json& item : v) Emit(out, item);
      out << YAML::EndSeq;
      return;
    case Json::value_t::string: {
      const std::string& s = v.get_ref<const std::string&>();
      if (NeedsQuotes(s)) out << YAML::DoubleQuoted;
      out << s;
      return;
    }
    case Json::value_t::boolean:
      out << (v.get<bool>() ? "true" : "false");
      return;
    case Json::value_t::number_integer:
      out << v.get<int64_t>();
      return;
    case Json::value_t::number_unsigned:
      out << v.get<uint64_t>();
      return;
    case Json::value_t::number_float:
      out << v.dump();
      return;
    default:
      out << YAML::Null;
      return;
  }
}

// One document of a stream and the line (0-based) it starts on in the whole text.
struct Document {
  std::string text;
  int first_line = 0;
};

// Splits a YAML stream into its documents at separator lines ("---", then only spaces or a
// comment), as Kubernetes' own reader does for `kubectl apply -f`. Each document is then read on
// its own: yaml-cpp 0.7's LoadAll never returns on a stray ',' at document level (found by
// fuzzing), where Load reports it.
Result<std::vector<Document>> SplitDocuments(std::string_view yaml, std::string_view source) {
  std::vector<Document> docs(1);
  int line = 0;
  while (!yaml.empty()) {
    const size_t nl = yaml.find('\n');
    const std::string_view text =
        yaml.substr(0, nl == std::string_view::npos ? yaml.size() : nl + 1);
    yaml.remove_prefix(text.size());
    if (text.substr(0, 3) == "---") {
      std::string_view rest = text.substr(3);
      while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t' ||
                               rest.front() == '\r' || rest.front() == '\n')) {
        rest.remove_prefix(1);
      }
      if (!rest.empty() && rest.front() != '#') {
        return InvalidArgumentError(
            "{}: line {}: only a comment may follow the document separator '---'", source,
            line + 1);
      }
      docs.push_back(Document{.text = {}, .first_line = line + 1});
    } else {
      docs.back().text.append(text);
    }
    ++line;
  }
  return docs;
}

}  // namespace

Result<std::vector<Json>> YamlToJson(std::string_view yaml, std::string_view source) {
  std::vector<Json> out;
  KINFER_ASSIGN_OR_RETURN(std::vector<Document> docs, SplitDocuments(yaml, source));
  for (const Document& doc : docs) {
    try {
      const YAML::Node node = YAML::Load(doc.text);
      if (!node || node.IsNull()) continue;
      KINFER_ASSIGN_OR_RETURN(Json j, Convert(node, source, 0));
      out.push_back(std::move(j));
    } catch (const YAML::Exception& e) {
      return InvalidArgumentError("{}: line {}, column {}: {}", source,
                                  doc.first_line + e.mark.line + 1, e.mark.column + 1, e.msg);
    } catch (const std::exception& e) {
      return InvalidArgumentError("{}: {}", source, e.what());
    }
  }
  return out;
}

std::string JsonToYaml(const Json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  out.SetSeqFormat(YAML::Block);
  out.SetMapFormat(YAML::Block);
  Emit(out, value);
  std::string s = out.c_str();
  if (s.empty() || s.back() != '\n') s.push_back('\n');
  return s;
}

}  // namespace kinfer::k8s
