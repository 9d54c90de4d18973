#include "tests/integration/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace tessera::testing {
namespace {

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::unique_ptr<Process> Process::Spawn(const std::vector<std::string>& argv,
                                        const std::string& log_path, std::string* error,
                                        const std::vector<std::string>& extra_env) {
  if (argv.empty()) {
    *error = "Spawn: empty argv";
    return nullptr;
  }
  // Everything the child needs is prepared before fork(): after it, only
  // async-signal-safe calls (the parent has gRPC threads).
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  for (const std::string& e : extra_env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    *error = "Spawn: cannot open log " + log_path + ": " + std::strerror(errno);
    return nullptr;
  }
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = fork();
  if (pid < 0) {
    *error = std::string("Spawn: fork: ") + std::strerror(errno);
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return nullptr;
  }
  if (pid == 0) {
    setpgid(0, 0);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    // Restore the default signal mask and dispositions (a test runner or
    // library may have changed them, and both survive exec).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    execvpe(args[0], args.data(), env.data());
    static const char kMsg[] = "Spawn: exec failed\n";
    (void)!write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    _exit(127);
  }
  setpgid(pid, pid);  // also from the parent, so no race with KillGroup
  close(log_fd);
  if (null_fd >= 0) close(null_fd);
  return std::unique_ptr<Process>(new Process(pid, log_path));
}

Process::~Process() { KillGroup(); }

std::optional<int> Process::WaitExit(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  PollUntil(timeout, [&] {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = DecodeWaitStatus(status);
      return true;
    }
    if (r < 0 && errno == ECHILD) {
      exit_code_ = -1;
      return true;
    }
    return false;
  });
  return exit_code_;
}

bool Process::Running() { return !WaitExit(std::chrono::milliseconds(0)).has_value(); }

void Process::Signal(int sig) {
  if (!exit_code_) kill(pid_, sig);
}

void Process::KillGroup(std::chrono::milliseconds grace) {
  // The group may outlive its leader (children that ignored the leader's
  // death), so it is signalled even when the leader was reaped already.
  kill(-pid_, SIGTERM);
  WaitExit(grace);
  kill(-pid_, SIGKILL);
  if (!exit_code_) WaitExit(std::chrono::milliseconds(5000));
}

std::string Process::LogTail(size_t max_bytes) const {
  const std::string all = ReadTestFile(log_path_);
  if (all.size() <= max_bytes) return all;
  return "...\n" + all.substr(all.size() - max_bytes);
}

std::vector<pid_t> FindProcesses(const std::string& marker, const std::string& env_entry) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::atoi(name.c_str()));
    if (pid == getpid()) continue;
    const std::string stat = ReadTestFile(entry.path().string() + "/stat");
    // State is the field after the parenthesised command name.
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size()) continue;
    if (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X') continue;
    const std::string cmdline = ReadTestFile(entry.path().string() + "/cmdline");
    if (cmdline.find(marker) == std::string::npos) continue;
    if (!env_entry.empty()) {
      const std::string env_text = ReadTestFile(entry.path().string() + "/environ");
      bool match = false;
      size_t start = 0;
      while (start < env_text.size()) {
        size_t end = env_text.find('\0', start);
        if (end == std::string::npos) end = env_text.size();
        if (env_text.compare(start, end - start, env_entry) == 0) {
          match = true;
          break;
        }
        start = end + 1;
      }
      if (!match) continue;
    }
    found.push_back(pid);
  }
  return found;
}

void KillProcesses(const std::string& marker) {
  // Polled: they are not our children, so there is nothing to wait on.
  PollUntil(std::chrono::seconds(10), [&] {
    const std::vector<pid_t> left = FindProcesses(marker);
    for (pid_t pid : left) kill(pid, SIGKILL);
    return left.empty();
  });
}

std::string MakeTempDir(const std::string& prefix) {
  std::string templ = (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  const char* dir = mkdtemp(buf.data());
  return dir == nullptr ? std::string() : std::string(dir);
}

std::string ReadTestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::unique_ptr<Process> SpawnLogged(const std::vector<std::string>& argv,
                                     const std::string& log_path, std::string* error) {
  {
    std::ofstream log(log_path);
    log << "$";
    for (const std::string& a : argv) log << " " << a;
    log << "\n";
  }
  return Process::Spawn(argv, log_path, error);
}

std::optional<std::vector<int>> WaitPortFile(const std::string& path, size_t count,
                                             Process& process, std::chrono::milliseconds timeout) {
  std::vector<int> ports;
  auto read = [&] {
    std::ifstream in(path);
    if (!in) return false;
    ports.clear();
    int p = 0;
    while (ports.size() < count && in >> p) ports.push_back(p);
    if (ports.size() < count) return false;
    for (int q : ports) {
      if (q <= 0 || q > 65535) return false;
    }
    return true;
  };
  if (!PollUntil(timeout, [&] { return read() || !process.Running(); })) return std::nullopt;
  if (!read()) return std::nullopt;
  return ports;
}

}  // namespace tessera::testing
