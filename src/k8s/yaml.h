// YAML <-> JSON for Kubernetes manifests (yaml-cpp underneath): reading objects people write in
// YAML (`kinfer operator --render -f llmservice.yaml`, test inputs) and printing objects the way
// kubectl does, with strings quoted wherever a YAML reader would take them for another type
// ("true", "0440", "1.5", "null", "yes").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace kinfer::k8s {

// Every document of a YAML stream (empty documents skipped). Plain scalars become booleans,
// integers, floats or null as YAML 1.2's core schema says; quoted scalars stay strings. Errors
// name `source` and the line.
Result<std::vector<Json>> YamlToJson(std::string_view yaml, std::string_view source);

// One document, block style, keys in the JSON object's order.
std::string JsonToYaml(const Json& value);

}  // namespace kinfer::k8s
