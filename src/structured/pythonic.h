// Tool calls written as a Python list of calls (`[get_weather(city="Paris", days=3), now()]`,
// the "pythonic" format of Llama 3.2/4 and others) parsed into names and JSON arguments. Python
// literals map to JSON: str to string, int/float to number, True/False/None to true/false/null,
// list/tuple to array, dict to object.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kinfer::structured {

struct PythonicCall {
  std::string name;
  std::string arguments;  // a JSON object
};

// `text` is the whole list, brackets included. Errors say where parsing stopped. Bounded
// nesting; never crashes on any input.
Result<std::vector<PythonicCall>> ParsePythonicCalls(std::string_view text);

}  // namespace kinfer::structured
