// kinfer: one binary for every role. `kinfer --help` lists the subcommands.
#include <cstdio>

#include "cli/commands.h"
#include "core/log.h"

namespace kinfer::cli {
int& ExitCode() {
  static int code = 0;
  return code;
}
}  // namespace kinfer::cli

int main(int argc, char** argv) {
  CLI::App app{
      "Kinfer: a private LLM serving stack (engine, OpenAI-compatible server, router, "
      "Kubernetes operator) in one binary"};
  app.set_version_flag("--version", std::string("kinfer ") + KINFER_VERSION);
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.parse_complete_callback([&] { kinfer::InitLogging(log_level); });

  kinfer::cli::AddInspectCommand(app);
  kinfer::cli::AddGenerateCommand(app);
  kinfer::cli::AddTokenizeCommand(app);
  kinfer::cli::AddServeCommand(app);
  kinfer::cli::AddChatTemplateCommand(app);
  kinfer::cli::AddPullCommand(app);
  kinfer::cli::AddModelsCommand(app);
  kinfer::cli::AddRouterCommand(app);
  kinfer::cli::AddOperatorCommand(app);
  kinfer::cli::AddGrammarCommand(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return kinfer::cli::ExitCode();
}
