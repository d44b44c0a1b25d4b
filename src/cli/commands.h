// The kinfer subcommands. Each Add*Command registers its flags on `app` and sets the callback
// that runs it; a callback's non-zero result becomes the process exit code.
#pragma once

#include <signal.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace kinfer::cli {

// Set by a subcommand's callback; main returns it.
int& ExitCode();

// Blocks SIGTERM and SIGINT (call it before any thread starts, so that every thread inherits the
// mask and one waiter takes them with sigwait) and ignores SIGPIPE. Returns the blocked set.
sigset_t BlockStopSignals();

// Starts a long-running service (the server, the router) and runs it until it stops: the exit
// code, or 1 after printing why Start failed.
template <class Service>
int StartAndRun(Service& service) {
  Status st = service.Start();
  if (!st.ok()) {
    fmt::print(stderr, "error: {}\n", st.message());
    return 1;
  }
  return service.Run();
}

void AddInspectCommand(CLI::App& app);
void AddGenerateCommand(CLI::App& app);
void AddTokenizeCommand(CLI::App& app);
void AddServeCommand(CLI::App& app);
// The topics `kinfer serve --help` groups its flags under, and which flags each holds.
const std::vector<std::pair<std::string, std::vector<std::string>>>& ServeFlagGroups();
void GroupServeFlags(CLI::App& cmd);
void AddChatTemplateCommand(CLI::App& app);
void AddPullCommand(CLI::App& app);
void AddModelsCommand(CLI::App& app);
void AddRouterCommand(CLI::App& app);
void AddOperatorCommand(CLI::App& app);
void AddGrammarCommand(CLI::App& app);

}  // namespace kinfer::cli
