#include "common/grpc/reflection_v1.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"

namespace tessera::rpc {
namespace {

namespace rv1 = grpc::reflection::v1;
using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;
using google::protobuf::FileDescriptorProto;

void Error(rv1::ServerReflectionResponse& response, grpc::StatusCode code, std::string message) {
  rv1::ErrorResponse* e = response.mutable_error_response();
  e->set_error_code(static_cast<int32_t>(code));
  e->set_error_message(std::move(message));
}

// `file` and its transitive dependencies not in `sent` (which gains them),
// the file first.
void AddFiles(const FileDescriptor* file, std::vector<std::string>* sent,
              rv1::FileDescriptorResponse* out) {
  std::deque<const FileDescriptor*> queue = {file};
  while (!queue.empty()) {
    const FileDescriptor* f = queue.front();
    queue.pop_front();
    if (std::find(sent->begin(), sent->end(), f->name()) != sent->end()) continue;
    sent->push_back(f->name());
    FileDescriptorProto proto;
    f->CopyTo(&proto);
    proto.SerializeToString(out->add_file_descriptor_proto());
    for (int i = 0; i < f->dependency_count(); ++i) queue.push_back(f->dependency(i));
  }
}

// One stream: each request is answered in order, one write in flight.
class Reactor final
    : public grpc::ServerBidiReactor<rv1::ServerReflectionRequest, rv1::ServerReflectionResponse> {
 public:
  explicit Reactor(const ReflectionV1Service* service) : service_(service) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side (or the call broke)
      Finish(grpc::Status::OK);
      return;
    }
    response_ = service_->Answer(request_, &sent_);
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the reflection stream broke"));
      return;
    }
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  const ReflectionV1Service* const service_;
  rv1::ServerReflectionRequest request_;
  rv1::ServerReflectionResponse response_;
  std::vector<std::string> sent_;  // files already sent on this stream
};

}  // namespace

grpc::ServerBidiReactor<rv1::ServerReflectionRequest, rv1::ServerReflectionResponse>*
ReflectionV1Service::ServerReflectionInfo(grpc::CallbackServerContext* /*context*/) {
  return new Reactor(this);
}

rv1::ServerReflectionResponse ReflectionV1Service::Answer(
    const rv1::ServerReflectionRequest& request, std::vector<std::string>* sent) const {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  rv1::ServerReflectionResponse response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  switch (request.message_request_case()) {
    case rv1::ServerReflectionRequest::kListServices: {
      rv1::ListServiceResponse* list = response.mutable_list_services_response();
      if (services_ != nullptr) {
        for (const std::string& name : *services_) list->add_service()->set_name(name);
      }
      break;
    }
    case rv1::ServerReflectionRequest::kFileByFilename: {
      const FileDescriptor* file = pool->FindFileByName(request.file_by_filename());
      if (file == nullptr) {
        Error(response, grpc::StatusCode::NOT_FOUND, "file not found");
      } else {
        AddFiles(file, sent, response.mutable_file_descriptor_response());
      }
      break;
    }
    case rv1::ServerReflectionRequest::kFileContainingSymbol: {
      const FileDescriptor* file = pool->FindFileContainingSymbol(request.file_containing_symbol());
      if (file == nullptr) {
        Error(response, grpc::StatusCode::NOT_FOUND, "symbol not found");
      } else {
        AddFiles(file, sent, response.mutable_file_descriptor_response());
      }
      break;
    }
    case rv1::ServerReflectionRequest::kFileContainingExtension: {
      const rv1::ExtensionRequest& ext = request.file_containing_extension();
      const google::protobuf::Descriptor* type = pool->FindMessageTypeByName(ext.containing_type());
      const google::protobuf::FieldDescriptor* field =
          type == nullptr ? nullptr : pool->FindExtensionByNumber(type, ext.extension_number());
      if (field == nullptr) {
        Error(response, grpc::StatusCode::NOT_FOUND, "extension not found");
      } else {
        AddFiles(field->file(), sent, response.mutable_file_descriptor_response());
      }
      break;
    }
    case rv1::ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const google::protobuf::Descriptor* type =
          pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        Error(response, grpc::StatusCode::NOT_FOUND, "type not found");
        break;
      }
      std::vector<const google::protobuf::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      rv1::ExtensionNumberResponse* numbers = response.mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type->full_name());
      for (const auto* f : extensions) numbers->add_extension_number(f->number());
      break;
    }
    case rv1::ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      Error(response, grpc::StatusCode::INVALID_ARGUMENT,
            "the request sets none of file_by_filename, file_containing_symbol, "
            "file_containing_extension, all_extension_numbers_of_type, list_services");
      break;
  }
  return response;
}

}  // namespace tessera::rpc
