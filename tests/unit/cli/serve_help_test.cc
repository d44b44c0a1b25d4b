// `kinfer serve --help` groups every flag under a topic, as vLLM's help does.
#include <gtest/gtest.h>

#include <set>

#include "cli/commands.h"

namespace kinfer::cli {

// main.cc defines it for the binary; the subcommands' callbacks set it.
int& ExitCode() {
  static int code = 0;
  return code;
}

namespace {

TEST(ServeHelp, EveryFlagIsInAGroup) {
  CLI::App app;
  AddServeCommand(app);
  CLI::App* serve = app.get_subcommand("serve");
  std::set<std::string> groups;
  for (const auto& [g, names] : ServeFlagGroups()) groups.insert(g);
  for (const CLI::Option* opt : serve->get_options()) {
    if (opt->get_name() == "--help") continue;
    EXPECT_TRUE(groups.count(opt->get_group()))
        << opt->get_name() << " is in no group: add it to ServeFlagGroups() (src/cli/serve.cc)";
  }
  // And every flag a group names exists.
  for (const auto& [g, names] : ServeFlagGroups()) {
    for (const std::string& n : names) EXPECT_NE(serve->get_option_no_throw(n), nullptr) << n;
  }
}

TEST(ServeHelp, HelpShowsTheGroupsInOrder) {
  CLI::App app;
  AddServeCommand(app);
  const std::string help = app.get_subcommand("serve")->help();
  size_t last = 0;
  for (const char* heading :
       {"Model:", "Frontend (HTTP, OpenAI API, security):", "Scheduler:", "KV cache:",
        "Device and compute:", "LoRA:", "Metrics:", "Shutdown:", "Logging:"}) {
    const size_t at = help.find(std::string("\n") + heading);
    ASSERT_NE(at, std::string::npos) << heading << "\n" << help;
    EXPECT_GT(at, last) << heading;
    last = at;
  }
  // A flag sits under its own heading.
  const size_t cache = help.find("\nKV cache:"), compute = help.find("\nDevice and compute:");
  const size_t flag = help.find("--kv-cache-dtype");
  EXPECT_TRUE(flag > cache && flag < compute) << help;
}

}  // namespace
}  // namespace kinfer::cli
