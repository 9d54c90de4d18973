// tessera: the admin and client CLI of a Tessera cluster. See
// router/cli/cli_args.cc (HelpText) or `tessera --help`.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "router/cli/cli_commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  tessera::cli::CliIo io{std::cout, std::cerr, std::cin};
  io.out_is_terminal = isatty(STDOUT_FILENO) == 1;
  const int code = tessera::cli::RunCli(args, tessera::cli::ProcessEnv(), io);
  std::cout.flush();
  return code;
}
