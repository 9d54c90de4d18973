// Helpers for the cluster-credential tests (cluster_auth_test, cluster_tls_test):
// the command lines of a single-rank tessera-worker and of a tessera-router on
// loopback with free ports and a port file (waited on with process.h's
// WaitPortFile), and channels with the cluster token and/or TLS credentials.
// Unlike WorkerCluster/RouterCluster they assume nothing about the
// credentials a process needs, so a test can start one that must fail, or one
// that serves TLS only.
//
// Not thread-safe (plain functions over the file system and processes).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "tests/integration/process.h"  // WaitPortFile, ReadTestFile

namespace tessera::testing {

// `mpirun -np 1 ... tessera-worker --host HOST --port 0 --port-file FILE
// --dummy tiny ... ARGS` (MCA flags as WorkerCluster's: loopback only).
std::vector<std::string> TinyWorkerCommand(const std::string& host, const std::string& port_file,
                                           const std::vector<std::string>& args);

// `tessera-router --host 127.0.0.1 --port 0 --admin-host 127.0.0.1
// --admin-port 0 --http-host 127.0.0.1 --http-port 0 --port-file FILE
// --health-interval-ms 200 ... ARGS`.
std::vector<std::string> RouterCommand(const std::string& port_file,
                                       const std::vector<std::string>& args);

// PEM files a test made (MakeTestCertificates).
struct TestCertificates {
  std::string ca;          // the cluster's CA certificate
  std::string cert;        // a node certificate signed by it: 127.0.0.1 / localhost,
  std::string key;         //   for both serverAuth and clientAuth
  std::string rogue_cert;  // the same, signed by another CA
  std::string rogue_key;
};
// Makes the CAs and certificates under `dir` with the openssl CLI; false and
// *error (openssl's output) when that fails.
bool MakeTestCertificates(const std::string& dir, TestCertificates* out, std::string* error);

// A channel to `address`: TLS when `ca_pem` is set (with `cert_pem`/`key_pem`
// as the client certificate when set), plaintext otherwise; with `token`
// (ignored for TLS without a client certificate), every call carries
// x-tessera-cluster-token.
std::shared_ptr<grpc::Channel> ClusterTestChannel(const std::string& address,
                                                  const std::string& token,
                                                  const std::string& ca_pem = "",
                                                  const std::string& cert_pem = "",
                                                  const std::string& key_pem = "");

// "/tessera.v1.Worker/Generate", ...: every method of the service `name`
// (from the generated descriptors), so a test covers methods added later.
std::vector<std::string> ServiceMethods(const std::string& name);

// One call of `method` with an empty request message, unary-shaped (a
// server-streaming method's call ends with its status); the call's status.
grpc::Status CallWithEmptyRequest(const std::shared_ptr<grpc::Channel>& channel,
                                  const std::string& method, std::chrono::milliseconds timeout);

}  // namespace tessera::testing
