// Base64 (RFC 4648): the standard alphabet when encoding; decoding also takes the URL-safe
// alphabet, missing padding and line breaks, as the inputs Kinfer meets (HTTP Basic
// credentials, test batches) come in both forms.
//
//   std::string b = Base64Encode("hi");                 // "aGk="
//   std::optional<std::string> s = Base64Decode(b);     // "hi"; nullopt for a bad character
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kinfer {

std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace kinfer
