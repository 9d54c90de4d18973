// Test helpers: write small .safetensors files by hand (the format is simple:
// 8-byte little-endian header length, JSON header, data), independently of
// the reader under test; read a loaded tensor back as floats.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/tensor.h"

namespace tessera::testing_util {

struct TensorBytes {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "I8", ...
  std::vector<int64_t> shape;
  std::string bytes;
};

inline std::string F32Bytes(const std::vector<float>& v) {
  std::string out(v.size() * 4, '\0');
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

inline std::string U16Bytes(const std::vector<float>& v, bool bf16) {
  std::string out(v.size() * 2, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    uint16_t h;
    if (bf16) {
      uint32_t bits;
      std::memcpy(&bits, &v[i], 4);
      h = static_cast<uint16_t>(bits >> 16);  // exact for the values tests use
    } else {
      h = FloatToHalf(v[i]);
    }
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

inline TensorBytes MakeTensor(const std::string& name, const std::string& dtype,
                              std::vector<int64_t> shape, const std::vector<float>& values) {
  std::string bytes = dtype == "F32"    ? F32Bytes(values)
                      : dtype == "F16"  ? U16Bytes(values, false)
                      : dtype == "BF16" ? U16Bytes(values, true)
                                        : std::string(values.size(), '\x01');
  return TensorBytes{name, dtype, std::move(shape), std::move(bytes)};
}

// Values that are exact in float16 and bfloat16: multiples of 1/8 in [-8, 8).
inline std::vector<float> ExactValues(int64_t n, int salt = 0) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(((i * 7 + salt * 13) % 128) - 64) / 8;
  return v;
}

inline std::string HeaderJson(const std::vector<TensorBytes>& tensors) {
  std::string json = "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t offset = 0;
  for (const TensorBytes& t : tensors) {
    json += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i > 0) json += ',';
      json += std::to_string(t.shape[i]);
    }
    json += "],\"data_offsets\":[" + std::to_string(offset) + "," +
            std::to_string(offset + t.bytes.size()) + "]}";
    offset += t.bytes.size();
  }
  return json + "}";
}

// The bytes of a file with header `json` (padded with spaces to 8 bytes) and
// `data`; `declared_len` overrides the header length field when >= 0.
inline std::string FileBytes(std::string json, const std::string& data, int64_t declared_len = -1) {
  while (json.size() % 8 != 0) json += ' ';
  const uint64_t len = declared_len >= 0 ? static_cast<uint64_t>(declared_len) : json.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  return out + json + data;
}

inline std::string SafetensorsBytes(const std::vector<TensorBytes>& tensors) {
  std::string data;
  for (const TensorBytes& t : tensors) data += t.bytes;
  return FileBytes(HeaderJson(tensors), data);
}

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// A fresh, empty directory under the test temp dir.
inline std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/tessera_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A tensor's elements as floats.
inline std::vector<float> ToVector(const Tensor& t) {
  std::vector<float> out(t.numel());
  ConvertToFloat32(t.data(), t.dtype(), t.numel(), out.data());
  return out;
}

// Elements [r0, r1) x [c0, c1) of a row-major [rows, cols] matrix.
inline std::vector<float> SubMatrix(const std::vector<float>& m, int64_t cols, int64_t r0,
                                    int64_t r1, int64_t c0, int64_t c1) {
  std::vector<float> out;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c = c0; c < c1; ++c) out.push_back(m[r * cols + c]);
  }
  return out;
}

}  // namespace tessera::testing_util
