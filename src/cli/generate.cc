// `kinfer generate`: run a prompt through a model and stream the continuation to stdout.
#include "cli/commands.h"

namespace kinfer::cli {

void AddGenerateCommand(CLI::App& app) {
  app.add_subcommand("generate", "Generate text from a prompt (not yet wired)");
}

}  // namespace kinfer::cli
