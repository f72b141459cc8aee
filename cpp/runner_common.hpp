// Shared by every C++ runner (cpp-torchscript, cpp-api, cpp-raw): reading the job and checking it
// (docs/schemas/job.schema.json, then the ten "Job rules"), input and weight files, the measurement
// sequence and the result files of docs/runner-contract.md. Keeping all of it here makes the three
// runners equivalent by construction: they differ only in how they load the model and in what one
// call does.
//
// Deliberately free of torch headers: cpp-raw includes it and must not depend on libtorch (the
// libtorch runners' shared part is torch_common.hpp).
#pragma once

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "job_schema.hpp"  // runner::kJobSchema: docs/schemas/job.schema.json, written by CMakeLists.txt

// Every file is little-endian (float32 / int64, and the inputs of a user's model in their dtypes) and is
// read and written with plain memcpy semantics.
static_assert(std::endian::native == std::endian::little,
              "the runner files are little-endian and this runner reads them without byte swapping");
static_assert(sizeof(float) == 4, "the runner files hold 4-byte IEEE floats");

// Set by CMakeLists.txt so the result JSON names the exact flags and compiler this binary was built with.
#ifndef RUNNER_COMPILE_FLAGS
#define RUNNER_COMPILE_FLAGS "unknown (RUNNER_COMPILE_FLAGS not defined by the build)"
#endif
#ifndef RUNNER_CXX_COMPILER
#define RUNNER_CXX_COMPILER "unknown"
#endif

namespace runner {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Errors and small helpers

// A problem the user must fix (bad job, wrong file); main() prints it on one line and exits 1.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "g++ 12.2.0" / "clang++ 15.0.6": the compiler that built this runner (the C++ "runtime").
inline std::string compiler_id() {
#if defined(__clang__)
  return std::string("clang++ ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("g++ ") + __VERSION__;
#else
  return "unknown C++ compiler";
#endif
}

// Compiler barrier: the optimiser may not move memory accesses (the calls' outputs, the inputs they
// read) across it, so the work stays between the two clock reads that are meant to bracket it.
inline void barrier() {
#if defined(__GNUC__) || defined(__clang__)
  asm volatile("" ::: "memory");
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

inline std::int64_t elapsed_ns(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

inline std::string join(const std::vector<std::int64_t>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

inline std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

// The first line of an exception's text: libtorch's messages carry a backtrace after it.
inline std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

inline std::int64_t product(const std::vector<std::int64_t>& v) {
  std::int64_t n = 1;
  for (const auto x : v) n *= x;
  return n;
}

// The file a loaded symbol lives in (e.g. the libtorch_cpu.so actually loaded), resolved to a real
// path; empty if the loader cannot tell.
inline std::string shared_object_of(const void* symbol) {
  Dl_info info{};
  if (dladdr(symbol, &info) == 0 || info.dli_fname == nullptr) return {};
  std::error_code ec;
  auto real = std::filesystem::canonical(info.dli_fname, ec);
  return ec ? std::string(info.dli_fname) : real.string();
}

// ---------------------------------------------------------------------------------------------
// The job file: docs/schemas/job.schema.json, then the ten rules of docs/runner-contract.md ("Job rules")

// Bytes per element of an input tensor's dtype (docs/runner-contract.md, "Several inputs, any dtype"); the
// schema's enum admits no other name.
inline std::int64_t dtype_bytes(const std::string& dtype) {
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "float64" || dtype == "int64") return 8;
  if (dtype == "bool") return 1;
  throw Error("internal: input dtype '" + dtype + "' is not in runner_common.hpp's list");
}

// One entry of the job's input_tensors: one argument of every call.
struct InputTensor {
  std::string dtype;                        // float32, float64, int64, int32 or bool
  std::vector<std::int64_t> sample_shape;  // one sample
  std::vector<std::int64_t> shape;         // the exact tensor of one call
  std::int64_t offset = 0;                 // its first byte in the inputs file

  std::int64_t sample_elements() const { return product(sample_shape); }
  // Where it ends in the inputs file: input_count samples after its offset.
  std::int64_t end(std::int64_t input_count) const {
    return offset + input_count * sample_elements() * dtype_bytes(dtype);
  }
  std::string describe() const { return dtype + " " + join(shape); }
};

struct Job {
  std::string path;  // of the job file itself, for error messages
  std::string runner, model_kind, model_dir, torchscript, model_file, state_dict, weights, inputs, outputs, timings,
      warmup_timings, artifacts, result, grad_mode;
  std::vector<std::int64_t> layers;  // MLP kinds only; [] for the others
  std::vector<std::int64_t> sample_shape, output_shape, input_shape;
  std::int64_t input_count = 0, sample_size = 0, output_size = 0, batch = 0, slots = 0, calls = 0,
               warmup_calls = 0, block = 0, threads = 0, interop_threads = 0, bare_calls = 0,
               bare_rounds = 1;
  json options = json::object();  // already checked against the schema and the keys the runner supports
  std::vector<InputTensor> input_tensors;  // at least one; the first is the one sample_shape and input_shape describe

  bool is_mlp() const { return model_kind == "mlp" || model_kind == "mlp_branch"; }
  // The built-in kinds' case, which every runner computes: one float32 tensor of input_shape.
  bool one_float_input() const { return input_tensors.size() == 1 && input_tensors[0].dtype == "float32"; }
  // "float32 [1, 4], int64 [1, 3]": the inputs of one call, for messages and the result's extra.
  std::string describe_inputs() const {
    std::vector<std::string> parts;
    for (const auto& t : input_tensors) parts.push_back(t.describe());
    return join(parts);
  }
};

// The schema as CMakeLists.txt compiled it in (job_schema.hpp defines runner::kJobSchema), parsed once.
inline const json& job_schema() {
  static const json schema = json::parse(kJobSchema);
  return schema;
}

namespace schema {

// The JSON Schema keywords docs/schemas/job.schema.json uses, which is all check() interprets: not a
// general validator. Annotations are skipped; any other keyword fails every job (an internal error)
// rather than being ignored, and tests/test_job_schema.py keeps the schema within this list.
inline const std::vector<std::string> kKeywords{"type",  "enum",     "required",  "additionalProperties",
                                                "properties", "items", "minItems", "minimum", "minLength"};
inline const std::vector<std::string> kAnnotations{"$schema", "$id", "title", "description"};

inline bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// JSON Schema's type names; an integer is never a boolean nor a float (8.0 is a float here).
inline bool has_type(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  throw Error("internal: job.schema.json names the unknown type '" + type + "'");
}

// How a message names a value: "'batch'", "'sample_shape'[0]", "'channels_last' in 'options'".
inline std::string name_of(const std::string& where, const std::string& key) {
  return "'" + key + "'" + (where.empty() ? "" : " in " + where);
}

inline std::string dump_all(const json& values) {
  std::string s;
  for (const auto& v : values) s += (s.empty() ? "" : ", ") + v.dump();
  return s;
}

// Checks `v` against the schema `s`, throwing the first problem as `job PATH: <where> ...`; `where`
// names `v` ("" for the job itself). Each keyword applies to the values of its JSON type only, as in
// JSON Schema.
inline void check(const json& v, const json& s, const std::string& where, const std::string& path) {
  const auto fail = [&](const std::string& what) {
    throw Error("job " + path + ": " + (where.empty() ? "the job" : where) + " " + what);
  };
  for (const auto& [keyword, _] : s.items())
    if (!contains(kKeywords, keyword) && !contains(kAnnotations, keyword))
      throw Error("internal: job.schema.json uses the keyword '" + keyword +
                  "', which runner_common.hpp does not interpret: add it there");
  if (const auto t = s.find("type"); t != s.end()) {
    const json types = t->is_array() ? *t : json::array({*t});
    if (std::none_of(types.begin(), types.end(), [&](const json& x) { return has_type(v, x.get<std::string>()); }))
      fail("must be of type " + dump_all(types) + ", got " + v.dump());
  }
  if (const auto e = s.find("enum"); e != s.end() && std::find(e->begin(), e->end(), v) == e->end())
    fail("is " + v.dump() + ", expected one of " + dump_all(*e));
  if (v.is_object()) {
    const json properties = s.value("properties", json::object());
    for (const auto& key : s.value("required", json::array()))
      if (!v.contains(key.get<std::string>()))
        throw Error("job " + path + ": " + name_of(where, key.get<std::string>()) +
                    " is missing (docs/schemas/job.schema.json)");
    const json additional = s.value("additionalProperties", json(true));
    if (!additional.is_boolean())
      throw Error("internal: job.schema.json's additionalProperties is a schema; runner_common.hpp reads only false");
    if (!additional.get<bool>())
      for (const auto& [key, _] : v.items())
        if (!properties.contains(key))
          throw Error("job " + path + ": " + name_of(where, key) +
                      " is not a key of docs/schemas/job.schema.json: remove it");
    for (const auto& [key, sub] : properties.items())
      if (v.contains(key)) check(v[key], sub, name_of(where, key), path);
  }
  if (v.is_array()) {
    if (const auto n = s.find("minItems"); n != s.end() && v.size() < n->get<std::size_t>())
      fail("has " + std::to_string(v.size()) + " items, expected at least " + n->dump());
    if (const auto items = s.find("items"); items != s.end())
      for (std::size_t i = 0; i < v.size(); ++i) check(v[i], *items, where + "[" + std::to_string(i) + "]", path);
  }
  // long double holds every int64 and uint64 exactly, so an integer is compared as it is.
  if (const auto m = s.find("minimum"); m != s.end() && v.is_number() && v.get<long double>() < m->get<long double>())
    fail("is " + v.dump() + ", below its minimum " + m->dump());
  if (const auto n = s.find("minLength"); n != s.end() && v.is_string()) {
    const auto& str = v.get_ref<const std::string&>();  // its length in code points, not UTF-8 bytes
    const auto length = std::count_if(str.begin(), str.end(), [](unsigned char c) { return (c & 0xC0) != 0x80; });
    if (length < n->get<std::int64_t>()) fail("is " + v.dump() + ", shorter than its minimum length " + n->dump());
  }
}

}  // namespace schema

// The ten cross-field rules of docs/runner-contract.md ("Job rules"), in its order, on a job that
// already satisfies the schema. `supported_options`: the keys of `options` this runner implements.
inline void check_rules(const Job& job, const std::vector<std::string>& supported_options,
                        const std::string& rendered_as) {
  const auto fail = [&](const std::string& what) { throw Error("job " + job.path + ": " + what); };
  const auto n = [](std::int64_t x) { return std::to_string(x); };
  if (job.sample_size != product(job.sample_shape))  // 1
    fail("'sample_size' is " + n(job.sample_size) + ", expected the product of sample_shape " +
         join(job.sample_shape) + " = " + n(product(job.sample_shape)));
  if (job.output_size != product(job.output_shape))  // 2
    fail("'output_size' is " + n(job.output_size) + ", expected the product of output_shape " +
         join(job.output_shape) + " = " + n(product(job.output_shape)));
  if (job.is_mlp()) {  // 3
    if (job.layers.size() < 2)
      fail("'layers' is " + join(job.layers) + ", expected at least 2 widths (input, output) for model_kind " +
           job.model_kind);
    if (job.layers.front() != job.sample_size)
      fail("'layers' is " + join(job.layers) + ", expected layers[0] = sample_size = " + n(job.sample_size));
    if (job.layers.back() != job.output_size)
      fail("'layers' is " + join(job.layers) + ", expected layers[-1] = output_size = " + n(job.output_size));
  }
  if (product(job.input_shape) != job.batch * job.sample_size)  // 4
    fail("'input_shape' is " + join(job.input_shape) + " (" + n(product(job.input_shape)) +
         " floats), expected batch x sample_size = " + n(job.batch) + " x " + n(job.sample_size) + " = " +
         n(job.batch * job.sample_size) + " floats: input_shape must be sample_shape or [batch, *sample_shape]");
  if (job.input_count < job.batch)  // 5
    fail("'input_count' is " + n(job.input_count) + ", less than batch = " + n(job.batch) +
         ": every call needs a whole batch");
  const std::int64_t slots = std::min(job.calls, job.input_count / job.batch);
  if (job.slots != slots)  // 6
    fail("'slots' is " + n(job.slots) + ", expected min(calls, input_count // batch) = min(" + n(job.calls) + ", " +
         n(job.input_count) + " // " + n(job.batch) + ") = " + n(slots));
  if (job.calls % job.block != 0)  // 7
    fail("'block' is " + n(job.block) + ", which does not divide calls = " + n(job.calls));
  if ((job.calls / job.block) % job.bare_rounds != 0 || job.bare_calls % job.bare_rounds != 0)  // 8
    fail("'bare_rounds' is " + n(job.bare_rounds) + ", which must divide both calls / block = " +
         n(job.calls / job.block) + " and bare_calls = " + n(job.bare_calls));
  for (const auto& [key, value] : job.options.items())  // 9
    if (!schema::contains(supported_options, key))
      fail("option '" + key + "' is not supported by " + rendered_as + ": supported: " +
           (supported_options.empty() ? std::string("none") : join(supported_options)) +
           " (remove it from the runner's options)");
  if (job.options.value("channels_last", false) && job.input_shape.size() != 4)
    fail("option 'channels_last' needs a 4-D input_shape (N, C, H, W), got " + join(job.input_shape) +
         ": drop the option for this model");
  // 10: the input tensors agree with sample_shape and input_shape, hold one batch each and lie in the
  // inputs file one after the other, each starting on a multiple of 8 (the file's size is checked when
  // it is read: read_inputs, read_input_bytes).
  const auto& first = job.input_tensors.front();
  if (first.sample_shape != job.sample_shape || first.shape != job.input_shape)
    fail("'input_tensors'[0] has sample_shape " + join(first.sample_shape) + " and shape " + join(first.shape) +
         ", expected the job's sample_shape " + join(job.sample_shape) + " and input_shape " + join(job.input_shape) +
         " (rule 10)");
  std::int64_t end = 0;
  for (std::size_t k = 0; k < job.input_tensors.size(); ++k) {
    const auto& t = job.input_tensors[k];
    const std::string name = "'input_tensors'[" + std::to_string(k) + "]";
    if (product(t.shape) != job.batch * t.sample_elements())
      fail(name + " has shape " + join(t.shape) + " (" + n(product(t.shape)) + " elements), expected batch x " +
           "the product of its sample_shape " + join(t.sample_shape) + " = " + n(job.batch) + " x " +
           n(t.sample_elements()) + " (rule 10)");
    const std::int64_t start = k == 0 ? 0 : (end + 7) / 8 * 8;
    if (t.offset != start)
      fail(name + " has offset " + n(t.offset) + ", expected " + n(start) +
           (k == 0 ? std::string(": the first tensor starts the inputs file")
                   : ": the end of 'input_tensors'[" + std::to_string(k - 1) + "] (" + n(end) +
                         ") rounded up to a multiple of 8") +
           " (rule 10)");
    end = t.end(job.input_count);
  }
}

// The runners that compute on one float32 tensor only (cpp-api, cpp-raw): a job with other inputs is a
// harness bug (it never sends them one), caught here rather than read as garbage floats.
inline void check_one_float_input(const Job& job, const std::string& rendered_as) {
  if (!job.one_float_input())
    throw Error("job " + job.path + ": 'input_tensors' is " + job.describe_inputs() + ", but " + rendered_as +
                " takes exactly one float32 input: this model needs cpp-torchscript or cpp-aoti");
}

// Reads the job, checks it against the schema, fills the Job from it and applies the ten rules, so
// that nothing later has to guess. `supported_options` are the keys of `options` this runner
// (`rendered_as`) implements; any other key is an error rather than a switch silently ignored.
inline Job read_job(const std::string& path, const std::vector<std::string>& supported_options,
                    const std::string& rendered_as) {
  std::ifstream f(path);
  if (!f) throw Error("cannot open job file " + path + ": check the path passed as the only argument");
  json j;
  try {
    j = json::parse(f);
  } catch (const json::parse_error& e) {
    throw Error("job " + path + " is not valid JSON: " + e.what());
  }
  schema::check(j, job_schema(), "", path);

  // Every key is present and of its type now. Paths the runner does not use (state_dict for C++,
  // torchscript for raw, ...) are part of the contract all the same.
  Job job;
  job.path = path;
  for (auto [key, field] : {std::pair{"runner", &job.runner}, {"model_kind", &job.model_kind},
                            {"model_dir", &job.model_dir}, {"torchscript", &job.torchscript},
                            {"model_file", &job.model_file}, {"state_dict", &job.state_dict},
                            {"weights", &job.weights}, {"inputs", &job.inputs}, {"outputs", &job.outputs},
                            {"timings", &job.timings}, {"warmup_timings", &job.warmup_timings},
                            {"artifacts", &job.artifacts}, {"result", &job.result}, {"grad_mode", &job.grad_mode}})
    *field = j.at(key).get<std::string>();
  for (auto [key, field] : {std::pair{"input_count", &job.input_count}, {"sample_size", &job.sample_size},
                            {"output_size", &job.output_size}, {"batch", &job.batch}, {"slots", &job.slots},
                            {"calls", &job.calls}, {"warmup_calls", &job.warmup_calls}, {"block", &job.block},
                            {"bare_calls", &job.bare_calls}, {"bare_rounds", &job.bare_rounds},
                            {"threads", &job.threads}, {"interop_threads", &job.interop_threads}})
    *field = j.at(key).get<std::int64_t>();
  for (auto [key, field] : {std::pair{"layers", &job.layers}, {"sample_shape", &job.sample_shape},
                            {"output_shape", &job.output_shape}, {"input_shape", &job.input_shape}})
    *field = j.at(key).get<std::vector<std::int64_t>>();
  job.options = j.at("options");
  for (const auto& t : j.at("input_tensors"))
    job.input_tensors.push_back({t.at("dtype").get<std::string>(),
                                 t.at("sample_shape").get<std::vector<std::int64_t>>(),
                                 t.at("shape").get<std::vector<std::int64_t>>(), t.at("offset").get<std::int64_t>()});

  check_rules(job, supported_options, rendered_as);
  return job;
}

// The runner is generated for one network; a job for another one is a harness bug, caught here
// rather than as garbage outputs.
inline void check_layers(const Job& job, const std::vector<std::int64_t>& rendered) {
  if (job.layers != rendered)
    throw Error("job " + job.path + ": 'layers' is " + join(job.layers) +
                " but this runner was rendered for layers " + join(rendered) +
                ": re-render and rebuild the runner for this model");
}

// Options (docs/runner-contract.md, "Options"): the schema has checked their values' types and enums
// and read_job the keys this runner supports; an absent option takes its default.
inline std::string option_string(const Job& job, const char* key, const std::string& fallback) {
  return job.options.value(key, fallback);
}

inline bool option_flag(const Job& job, const char* key) { return job.options.value(key, false); }

// ---------------------------------------------------------------------------------------------
// Binary files

// Reads a whole float32 LE file, which must hold exactly `expected` floats; `why` says where that
// count comes from, for the error message.
inline std::vector<float> read_floats(const std::string& path, std::int64_t expected, const std::string& what,
                                      const std::string& why) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  if (ec) throw Error("cannot read " + what + " file " + path + ": " + ec.message());
  const auto want = static_cast<std::uintmax_t>(expected) * sizeof(float);
  if (bytes != want)
    throw Error(what + " file " + path + " has " + std::to_string(bytes) + " bytes, but " + why + " = " +
                std::to_string(expected) + " float32 = " + std::to_string(want) +
                " bytes: regenerate the file or fix the job");
  std::vector<float> data(static_cast<std::size_t>(expected));
  std::ifstream f(path, std::ios::binary);
  if (!f.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(want)))
    throw Error("short read on " + what + " file " + path);
  return data;
}

// The one float32 tensor's case (rule 10's exact size, in floats).
inline std::vector<float> read_inputs(const Job& job) {
  return read_floats(job.inputs, job.input_count * job.sample_size, "inputs",
                     "the job's input_count x sample_size = " + std::to_string(job.input_count) + " x " +
                         std::to_string(job.sample_size));
}

// The inputs file of any input_tensors, as bytes: it must end exactly where the last tensor does (rule 10),
// and a bool tensor's bytes are 0 or 1. Held in 8-byte words, so every tensor (offsets are multiples of 8)
// starts aligned for its dtype.
struct InputBytes {
  std::vector<std::uint64_t> words;
  const std::byte* data() const { return reinterpret_cast<const std::byte*>(words.data()); }
};

inline InputBytes read_input_bytes(const Job& job) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(job.inputs, ec);
  if (ec) throw Error("cannot read inputs file " + job.inputs + ": " + ec.message());
  const std::size_t last = job.input_tensors.size() - 1;
  const auto want = static_cast<std::uintmax_t>(job.input_tensors[last].end(job.input_count));
  if (bytes != want)
    throw Error("inputs file " + job.inputs + " has " + std::to_string(bytes) +
                " bytes, but 'input_tensors' end at byte " + std::to_string(want) + " ('input_tensors'[" +
                std::to_string(last) + "], " + std::to_string(job.input_count) +
                " samples; no padding after it): regenerate the file or fix the job");
  InputBytes in;
  in.words.assign(static_cast<std::size_t>((want + 7) / 8), 0);
  std::ifstream f(job.inputs, std::ios::binary);
  if (!f.read(reinterpret_cast<char*>(in.words.data()), static_cast<std::streamsize>(want)))
    throw Error("short read on inputs file " + job.inputs);
  for (std::size_t k = 0; k < job.input_tensors.size(); ++k) {
    const auto& t = job.input_tensors[k];
    if (t.dtype != "bool") continue;
    const auto* b = reinterpret_cast<const unsigned char*>(in.data() + t.offset);
    const auto* e = reinterpret_cast<const unsigned char*>(in.data() + t.end(job.input_count));
    if (const auto* bad = std::find_if(b, e, [](unsigned char c) { return c > 1; }); bad != e)
      throw Error("inputs file " + job.inputs + ": 'input_tensors'[" + std::to_string(k) + "] is bool but byte " +
                  std::to_string(t.offset + (bad - b)) + " of the file holds " + std::to_string(*bad) +
                  " (a bool is one byte, 0 or 1)");
  }
  return in;
}

// weights.bin: per linear layer, weight [out, in] row-major then bias [out] (docs/runner-contract.md).
inline std::int64_t weight_count(const std::vector<std::int64_t>& layers) {
  std::int64_t n = 0;
  for (std::size_t k = 0; k + 1 < layers.size(); ++k) n += layers[k + 1] * layers[k] + layers[k + 1];
  return n;
}

// Read from model_file, the file the job says this runner loads (weights.bin for cpp-api and cpp-raw).
inline std::vector<float> read_weights(const Job& job) {
  return read_floats(job.model_file, weight_count(job.layers), "weights",
                     "layers " + join(job.layers) + " need (per layer: weight [out, in], bias [out])");
}

template <class T>
void write_binary(const std::string& path, const std::vector<T>& data, const std::string& what) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error("cannot create " + what + " file " + path + ": check that its folder exists and is writable");
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(T)));
  f.close();
  if (!f) throw Error("failed writing " + what + " file " + path + " (disk full?)");
}

// ---------------------------------------------------------------------------------------------
// The measurement sequence (docs/runner-contract.md, steps 2-8)

struct Measurement {
  std::int64_t load_ns = 0;
  std::int64_t first_call_ns = 0;
  std::int64_t timer_overhead_ns = 0;
  std::vector<std::int64_t> bare_ns;  // each round's bare-pass duration; empty: no bare pass (bare_calls = 0)
  std::int64_t peak_rss_kb = -1;   // VmHWM read by the process itself; -1: /proc not readable
  std::vector<float> outputs;               // slots × batch × output_size
  std::vector<std::int64_t> timings;        // calls / block
  std::vector<std::int64_t> warmup_timings;  // warmup_calls
};

// Median of 1000 back-to-back pairs of clock reads with nothing between them.
inline std::int64_t timer_overhead_ns() {
  constexpr int kPairs = 1000;
  std::vector<std::int64_t> d(kPairs);
  for (int k = 0; k < kPairs; ++k) {
    const auto t0 = Clock::now();
    barrier();
    const auto t1 = Clock::now();
    d[k] = elapsed_ns(t0, t1);
  }
  std::nth_element(d.begin(), d.begin() + kPairs / 2, d.end());
  return d[kPairs / 2];
}

// This process's own peak resident memory (VmHWM of /proc/self/status) in kB, or -1. Read by the
// runner itself, so a process too short-lived for the harness to sample still reports its figure.
inline std::int64_t peak_rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

// Runs one benchmark over inputs already in memory (step 2, not timed): `load()` builds the model (timed
// as load_ns), then inside `scope(body)` (the grad-mode guard, so it covers input creation and forward
// alike) the warm-up calls, each timed alone, the timed loop with one clock read per block, and the
// bare pass; then the peak memory and the timer overhead.
// Batch s's input is `in + s × BS`: for measure(), the float32 batch itself (In = const float*, BS floats
// per batch); for a user's model, its slot's prepared tensors (In = pointer to them, BS = 1).
// `call(In batch_in, float* out)` computes one whole batch, batch × output_size floats written to `out`.
// `bare(In batch_in)` is the seed's call with nothing kept but the last output (the runner holds it); it
// runs `bare_calls` times, batch i % slots, in `bare_rounds` runs that alternate with the timed blocks,
// one pair of clock reads around each run, so the harness can tell what the timed loop's bookkeeping costs.
// Load and call are templates so the raw runner's arithmetic inlines into the loop, as a hand-written
// loop would.
template <class In, class Load, class Call, class Bare, class Scope>
Measurement measure_slots(const Job& job, const In in, const std::size_t BS, Load&& load, Call&& call, Bare&& bare,
                          Scope&& scope) {
  // Floats per batch out: batch s's outputs start at s × BO.
  const std::size_t BO = static_cast<std::size_t>(job.batch * job.output_size);
  const std::size_t slots = static_cast<std::size_t>(job.slots);
  const std::size_t calls = static_cast<std::size_t>(job.calls);
  const std::size_t block = static_cast<std::size_t>(job.block);
  const std::size_t warmups = static_cast<std::size_t>(job.warmup_calls);

  Measurement m;
  // Allocated (and zero-filled, so the pages are touched) before anything is timed.
  m.outputs.assign(slots * BO, 0.0f);
  m.timings.assign(calls / block, 0);
  m.warmup_timings.assign(warmups, 0);
  std::vector<float> scratch(BO, 0.0f);  // warm-up outputs are not part of the compared outputs
  m.bare_ns.reserve(static_cast<std::size_t>(job.bare_rounds));

  {
    const auto t0 = Clock::now();
    load();
    const auto t1 = Clock::now();
    m.load_ns = elapsed_ns(t0, t1);
  }

  scope([&] {
    for (std::size_t w = 0; w < warmups; ++w) {
      const In batch_in = in + (w % slots) * BS;
      const auto t0 = Clock::now();
      barrier();
      call(batch_in, scratch.data());
      barrier();
      const auto t1 = Clock::now();
      m.warmup_timings[w] = elapsed_ns(t0, t1);
    }

    float* const out = m.outputs.data();
    std::int64_t* timings = m.timings.data();
    const std::size_t blocks = calls / block;
    const std::size_t rounds = static_cast<std::size_t>(job.bare_rounds);
    const std::size_t blocks_per_round = blocks / rounds;
    const std::size_t bare_per_round = static_cast<std::size_t>(job.bare_calls) / rounds;
    // Call i uses batch (and output slot) i % slots: kept as a wrapping counter with its two
    // pointers rather than a division per call, which would cost the raw runner a few ns.
    std::size_t slot = 0;
    In x = in;
    float* y = out;
    // The bare pass's own counter: bare call i uses batch i % slots.
    std::size_t bare_slot = 0;
    In xb = in;
    // The timed blocks in `rounds` equal runs, each followed by its share of the bare pass, so both
    // run under the same machine state (a VM can change speed within one process).
    for (std::size_t r = 0; r < rounds; ++r) {
      for (std::size_t b = r * blocks_per_round; b < (r + 1) * blocks_per_round; ++b) {
        const auto t0 = Clock::now();
        barrier();
        for (std::size_t j = 0; j < block; ++j) {
          call(x, y);
          // Calls stay separate calls: without this the compiler may interleave the raw runner's
          // inlined calls and vectorise *across* calls, which is batching (micro-benchmark at
          // 2-8-8-1: ~3 ns per sample instead of ~9), not the per-call cost every other runner pays.
          // Emits no instruction.
          barrier();
          x += BS;
          y += BO;
          if (++slot == slots) {
            slot = 0;
            x = in;
            y = out;
          }
        }
        barrier();
        const auto t1 = Clock::now();
        timings[b] = elapsed_ns(t0, t1);
      }
      if (bare_per_round == 0) continue;
      const auto t0 = Clock::now();
      barrier();
      for (std::size_t i = 0; i < bare_per_round; ++i) {
        bare(xb);
        barrier();  // separate calls, as in the timed loop
        xb += BS;
        if (++bare_slot == slots) {
          bare_slot = 0;
          xb = in;
        }
      }
      barrier();
      const auto t1 = Clock::now();
      m.bare_ns.push_back(elapsed_ns(t0, t1));
    }
  });

  m.peak_rss_kb = peak_rss_kb();
  m.first_call_ns = m.warmup_timings.front();
  m.timer_overhead_ns = timer_overhead_ns();
  return m;
}

// The built-in kinds' benchmark, one float32 tensor per call: reads the inputs file whole as floats (not
// timed), then measure_slots with `call(const float* batch_in, float* out)` over batch × sample_size floats.
template <class Load, class Call, class Bare, class Scope>
Measurement measure(const Job& job, Load&& load, Call&& call, Bare&& bare, Scope&& scope) {
  const std::vector<float> inputs = read_inputs(job);
  const float* const in = inputs.data();
  return measure_slots(job, in, static_cast<std::size_t>(job.batch * job.sample_size), std::forward<Load>(load),
                       std::forward<Call>(call), std::forward<Bare>(bare), std::forward<Scope>(scope));
}

// ---------------------------------------------------------------------------------------------
// The result files (step 9)

// What only the runner itself knows; everything else in the result comes from the job and the measurement.
struct RuntimeInfo {
  json libtorch_version = nullptr;  // null: the runner uses no libtorch
  json libtorch_path = nullptr;
  std::int64_t threads = 1;          // read back from the runtime
  std::int64_t interop_threads = 1;  // read back from the runtime
  std::string grad_mode;             // the mode actually in effect during the calls
  json extra = json::object();
};

// Outputs, timings and warm-up timings first, the result JSON last and atomically (written to a
// temporary name, then renamed), because its presence tells the harness the run finished.
inline void write_results(const Job& job, const Measurement& m, const RuntimeInfo& info,
                          const std::string& rendered_as, const std::string& kind) {
  write_binary(job.outputs, m.outputs, "outputs");
  write_binary(job.timings, m.timings, "timings");
  write_binary(job.warmup_timings, m.warmup_timings, "warm-up timings");

  json extra = info.extra;
  extra["language"] = "C++";
  extra["kind"] = kind;
  extra["rendered_as"] = rendered_as;
  extra["compiler"] = RUNNER_CXX_COMPILER;
  extra["compile_flags"] = RUNNER_COMPILE_FLAGS;
  extra["clock"] = "std::chrono::steady_clock";
  extra["clock_period_ns"] = 1e9 * Clock::period::num / Clock::period::den;
  extra["options"] = job.options;
  extra["model_kind"] = job.model_kind;
  extra["model_file"] = job.model_file;

  const json result = {
      {"runner", job.runner},
      {"status", "ok"},
      {"runtime", compiler_id()},
      {"libtorch_version", info.libtorch_version},
      {"libtorch_path", info.libtorch_path},
      {"threads", info.threads},
      {"interop_threads", info.interop_threads},
      {"grad_mode", info.grad_mode},
      {"load_ns", m.load_ns},
      {"first_call_ns", m.first_call_ns},
      {"calls", job.calls},
      {"warmup_calls", job.warmup_calls},
      {"block", job.block},
      {"batch", job.batch},
      {"timer_overhead_ns", m.timer_overhead_ns},
      {"bare_calls", job.bare_calls},
      {"bare_rounds", job.bare_rounds},
      {"bare_ns", m.bare_ns},
      {"peak_rss_kb", m.peak_rss_kb < 0 ? json(nullptr) : json(m.peak_rss_kb)},
      {"extra", extra},
  };
  const std::string tmp = job.result + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) throw Error("cannot create result file " + tmp + ": check that its folder exists and is writable");
    f << result.dump(2) << '\n';
    f.close();
    if (!f) throw Error("failed writing result file " + tmp + " (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, job.result, ec);
  if (ec) throw Error("cannot rename " + tmp + " to " + job.result + ": " + ec.message());
}

// ---------------------------------------------------------------------------------------------
// main()

// Parses the single argument, runs `body(job)`, and turns any exception into one line on stderr
// and exit status 1 (no result JSON is written, so the harness sees the run as failed).
// `supported_options`: the keys of the job's `options` this runner implements.
template <class Body>
int run_main(int argc, char** argv, const char* rendered_as, const std::vector<std::string>& supported_options,
             Body&& body) {
  try {
    if (argc != 2) throw Error(std::string("usage: ") + (argc > 0 ? argv[0] : "runner") + " JOB.json");
    const Job job = read_job(argv[1], supported_options, rendered_as);
    body(job);
    return 0;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');  // one line, whatever the library put in it
    std::cerr << rendered_as << ": error: " << msg << std::endl;
  } catch (...) {
    std::cerr << rendered_as << ": error: unknown exception" << std::endl;
  }
  return 1;
}

}  // namespace runner
