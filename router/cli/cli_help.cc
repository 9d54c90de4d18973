// The `tessera` CLI's help texts (cli_args.h's HelpText).
#include "absl/strings/str_cat.h"
#include "router/cli/cli_args.h"

namespace tessera::cli {

std::string HelpText(std::optional<Command> command) {
  constexpr absl::string_view kGlobal =
      "Global options (before or after the command; --name=value also works):\n"
      "  --router ADDR        admin address of tessera-router (default $TESSERA_ROUTER,\n"
      "                       else localhost:50055)\n"
      "  --admin-token TOKEN  admin token, sent as 'authorization: Bearer TOKEN'\n"
      "                       (default $TESSERA_ADMIN_TOKEN)\n"
      "  --endpoint ADDR      public address for generate (default $TESSERA_ENDPOINT,\n"
      "                       else localhost:50050)\n"
      "  --api-key KEY        API key for generate (default $TESSERA_API_KEY)\n"
      "  --tls-ca FILE        generate over TLS: the PEM CA bundle that signed the\n"
      "                       endpoint's certificate (a router started with --tls-*)\n"
      "  --tls-cert FILE      with --tls-ca: a client certificate (PEM) to present,\n"
      "  --tls-key FILE       and its private key; both or neither\n"
      "  --timeout S          deadline of each call in seconds (default 10; generate:\n"
      "                       none unless given)\n"
      "  --json               one JSON document on stdout (workers, status, drain, add,\n"
      "                       undrain, remove)\n"
      "  -h, --help           this help; `tessera CMD --help` for one command\n";
  constexpr absl::string_view kExitCodes =
      "Exit codes:\n"
      "  0  ok\n"
      "  1  the call failed (stderr: tessera: <command>: <gRPC code>: <message>)\n"
      "  2  usage error\n"
      "  3  not found (no such worker)\n"
      "  4  unauthenticated or permission denied (check --admin-token / --api-key)\n"
      "  5  router unreachable (UNAVAILABLE, or no connection before the deadline)\n"
      "  6  drain --wait timed out\n";
  if (!command.has_value()) {
    return absl::StrCat(
        "tessera: admin and client CLI of a Tessera cluster (tessera-router).\n"
        "\n"
        "Usage: tessera [OPTIONS] COMMAND [ARGS] [OPTIONS]\n"
        "\n"
        "Commands:\n"
        "  workers [--watch]    list the workers: state, load, KV use, prefix hits\n"
        "  status [--watch]     cluster status, as `key: value` lines\n"
        "  drain ID [--wait]    stop sending new requests to a worker\n"
        "  undrain ID           put a drained worker back in rotation\n"
        "  add ADDR             add a worker (replica leader HOST:PORT)\n"
        "  remove ID            remove a worker (its in-flight requests finish)\n"
        "  generate TEXT        generate text, streamed to stdout\n"
        "\n",
        kGlobal, "\n", kExitCodes);
  }
  std::string body;
  switch (*command) {
    case Command::kWorkers:
      body =
          "Usage: tessera workers [--json] [--watch [--interval S] [--count N]]\n"
          "\n"
          "Lists the router's workers (Admin.ListWorkers) as a table:\n"
          "  ID, ADDRESS, STATE (healthy, unhealthy, draining), RUNNING and WAITING\n"
          "  (sequences on the worker), KV USE (KV blocks used/total and %), PREFIX HIT\n"
          "  (the worker's prefix-cache hit rate since it started) and IN-FLIGHT (this\n"
          "  router's requests running there now). `-` where the worker has not\n"
          "  reported its load yet.\n"
          "With --json: {\"workers\": [{\"id\", \"address\", \"state\", \"source\",\n"
          "  \"in_flight\", \"requests_routed\", \"consecutive_failures\", \"last_error\",\n"
          "  \"block_size\", \"load\": {...}}]}.\n"
          "\n"
          "  --watch       redraw every --interval seconds, like top (on a terminal the\n"
          "                screen is cleared; otherwise each frame starts with a\n"
          "                '--- tessera <command> <time>' line, or with --json is one\n"
          "                JSON document per line) until Ctrl-C / SIGTERM (exit 0)\n"
          "  --interval S  seconds between refreshes (default 2)\n"
          "  --count N     stop after N refreshes (exit code of the last one)\n";
      break;
    case Command::kStatus:
      body =
          "Usage: tessera status [--json] [--watch [--interval S] [--count N]]\n"
          "\n"
          "Prints the cluster status (Admin.GetClusterStatus) as `key: value` lines:\n"
          "  policy, worker counts by state, running/waiting sequences, prefix-cache\n"
          "  hit rate and counters, request counters. --json: the same keys in one\n"
          "  object.\n"
          "\n"
          "  --watch       redraw every --interval seconds, like top (on a terminal the\n"
          "                screen is cleared; otherwise each frame starts with a\n"
          "                '--- tessera <command> <time>' line, or with --json is one\n"
          "                JSON document per line) until Ctrl-C / SIGTERM (exit 0)\n"
          "  --interval S  seconds between refreshes (default 2)\n"
          "  --count N     stop after N refreshes (exit code of the last one)\n";
      break;
    case Command::kDrain:
      body =
          "Usage: tessera drain ID [--wait] [--wait-timeout S] [--json]\n"
          "\n"
          "Stops placing new requests on worker ID (Admin.DrainWorker); requests\n"
          "already there finish. Undo with `tessera undrain ID`.\n"
          "  --wait            then poll the worker list until the worker has nothing\n"
          "                    left: the router's in-flight requests there and the\n"
          "                    worker's reported running + waiting sequences are 0\n"
          "  --wait-timeout S  give up waiting after S seconds (default 300): exit 6\n"
          "With --json: {\"worker\": {...}} (and \"drained\", \"waited_s\" with --wait).\n";
      break;
    case Command::kUndrain:
      body =
          "Usage: tessera undrain ID [--json]\n"
          "\n"
          "Puts a drained worker back in rotation (Admin.UndrainWorker).\n";
      break;
    case Command::kAdd:
      body =
          "Usage: tessera add ADDR [--json]\n"
          "\n"
          "Adds the replica whose leader listens at ADDR (HOST:PORT) to the router\n"
          "(Admin.AddWorker) and prints the id it got.\n";
      break;
    case Command::kRemove:
      body =
          "Usage: tessera remove ID [--json]\n"
          "\n"
          "Removes worker ID from the router (Admin.RemoveWorker). Requests running\n"
          "there finish; no new ones are placed. Drain first to let it empty.\n";
      break;
    case Command::kGenerate:
      body =
          "Usage: tessera generate TEXT [--max-tokens N] [--temperature T] [--seed S]\n"
          "\n"
          "Sends TEXT (\"-\": read from stdin) to the public endpoint (Llm.Generate on\n"
          "--endpoint, with --api-key) and streams the generated text to stdout as it\n"
          "arrives. At the end, stderr gets one line with the finish reason, the token\n"
          "usage and the worker that served it.\n"
          "  --max-tokens N    tokens to generate at most (server default 16)\n"
          "  --temperature T   0 = greedy (server default 1.0)\n"
          "  --seed S          sampling seed: the same seed gives the same text\n"
          "A finish reason of error or abort exits 1. Put `--` before a TEXT that\n"
          "starts with a dash.\n";
      break;
  }
  return absl::StrCat(body, "\n", kGlobal, "\n", kExitCodes);
}

}  // namespace tessera::cli
