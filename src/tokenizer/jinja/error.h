// The one exception type of the Jinja interpreter. It never leaves the tokenizer module:
// ChatTemplate::Parse and ::Render catch it and return a Status whose message has the template's
// line and column.
#pragma once

#include <exception>
#include <string>
#include <utility>

namespace kinfer::tokenizer::jinja {

class Error : public std::exception {
 public:
  explicit Error(std::string message, int line = 0, int column = 0)
      : message_(std::move(message)), line_(line), column_(column) {}

  // raise_exception("...") in a template: the message is the template's own, for the client.
  static Error Raised(std::string message) {
    Error e(std::move(message));
    e.raised_ = true;
    return e;
  }

  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& message() const { return message_; }
  int line() const { return line_; }
  int column() const { return column_; }
  bool raised() const { return raised_; }
  bool has_location() const { return line_ > 0; }
  void SetLocation(int line, int column) {
    line_ = line;
    column_ = column;
  }

 private:
  std::string message_;
  int line_;
  int column_;
  bool raised_ = false;
};

}  // namespace kinfer::tokenizer::jinja
