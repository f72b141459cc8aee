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
#include <latch>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
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

// The optional `load` key (docs/runner-contract.md, "Load job"): caller threads on the one loaded model.
struct LoadSpec {
  std::string mode;  // closed or poisson
  std::int64_t callers = 1;
  double duration_s = 0;
  double rate = 0;  // poisson: arrivals per second over all callers (read_job refuses poisson without one)
  std::uint64_t seed = 0;
  std::string latencies;  // int64 LE ns per call, caller after caller
  std::string ready, go;  // empty when absent
  bool noop = false;      // every call replaced by the no-op stand-in (NoopCall): the loop's own cost
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
  double warmup_s = 0;  // after warmup_calls, the warm-up goes on until this many seconds have passed
  json options = json::object();  // already checked against the schema and the keys the runner supports
  std::vector<InputTensor> input_tensors;  // at least one; the first is the one sample_shape and input_shape describe
  std::optional<LoadSpec> load;            // a load job (docs/runner-contract.md, "Load job"), else none

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
  job.warmup_s = j.at("warmup_s").get<double>();
  job.options = j.at("options");
  for (const auto& t : j.at("input_tensors"))
    job.input_tensors.push_back({t.at("dtype").get<std::string>(),
                                 t.at("sample_shape").get<std::vector<std::int64_t>>(),
                                 t.at("shape").get<std::vector<std::int64_t>>(), t.at("offset").get<std::int64_t>()});
  if (j.contains("load")) {
    const json& l = j.at("load");
    LoadSpec load;
    load.mode = l.at("mode").get<std::string>();
    load.callers = l.at("callers").get<std::int64_t>();
    load.duration_s = l.at("duration_s").get<double>();
    load.rate = l.value("rate", 0.0);
    load.seed = l.at("seed").get<std::uint64_t>();
    load.latencies = l.at("latencies").get<std::string>();
    load.ready = l.value("ready", std::string());
    load.go = l.value("go", std::string());
    load.noop = l.value("noop", false);
    job.load = load;
  }

  check_rules(job, supported_options, rendered_as);
  // The load job's own rule (the Python runtime's message): a Poisson load has no arrivals without a rate.
  if (job.load && job.load->mode == "poisson" && !(job.load->rate > 0))
    throw Error("job " + path + ": 'load' mode poisson needs a 'rate' above 0");
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
  std::int64_t warmup_calls_made = 0;        // warmup_calls, then as many as warmup_s took
  std::int64_t warmup_ns = 0;                // the whole warm-up
  json load = nullptr;                       // a load job's record for the result (null: none)
  std::vector<std::vector<std::int64_t>> load_latencies;  // a load job's: each caller's, in its order
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

// ---------------------------------------------------------------------------------------------
// The load job (docs/runner-contract.md, "Load job"): after the timed slots pass, `callers` std::threads
// call the one loaded model for duration_s, closed (as fast as they can) or at Poisson arrivals.

// How a runner's load-job callers call its model, stated by the runner, which alone knows what its call
// shares: `shared` when every caller calls the one loaded model object, `note` the result's load.note.
struct Sharing {
  bool shared = true;
  std::string note;
};

inline constexpr std::size_t kLoadCheck = 64;  // outputs a caller holds before comparing them with the slots'
// A caller sleeps only until this long before an arrival (or the start), then spins to it: on a VM whose cores go
// idle a sleep ends up to ~14 ms late (measured here, with 200 µs of spin: 20 % of Poisson queries at 4,700/s
// more than 100 µs late), which would count as the model's latency. A lone caller owns its core anyway.
inline constexpr std::int64_t kSpinNs = 50'000'000;

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// The spin does not yield: on a busy machine a yield hands the core to another process for a whole time slice.
inline void wait_until_ns(std::int64_t due) {
  const std::int64_t ahead = due - now_ns();
  if (ahead > kSpinNs) std::this_thread::sleep_for(std::chrono::nanoseconds(ahead - kSpinNs));
  while (now_ns() < due) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

// Several processes start their callers together: each says it is ready, then waits for the go file.
inline void wait_for_go(const LoadSpec& load) {
  if (!load.ready.empty()) {
    std::ofstream f(load.ready, std::ios::trunc);
    f << "ready\n";
    f.close();
    if (!f) throw Error("load: cannot create the ready file " + load.ready);
  }
  if (load.go.empty()) return;
  const auto give_up = Clock::now() + std::chrono::seconds(600);
  std::error_code ec;
  while (!std::filesystem::exists(load.go, ec)) {
    if (Clock::now() > give_up)
      throw Error("load: no go file " + load.go + " after 600 s: the harness that started this process is gone");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// One caller thread's figures.
struct LoadCaller {
  std::vector<std::int64_t> latencies;
  std::int64_t checked = 0, mismatches = 0, unissued = 0;
  std::exception_ptr error;
};

// The held outputs (`count` of them, BO floats each, call k's from slot used[k]) against the slots' outputs
// of the timed pass: returns the calls whose output differs in any float. Equality is exact (NaN never
// equal), as torch.equal: the same model on the same input in the same process gives the same floats.
inline std::int64_t mismatched(const float* held, const std::size_t* used, std::size_t count, const float* kept,
                               std::size_t BO) {
  std::int64_t bad = 0;
  for (std::size_t k = 0; k < count; ++k) {
    const float* got = held + k * BO;
    const float* want = kept + used[k] * BO;
    for (std::size_t j = 0; j < BO; ++j)
      if (got[j] != want[j]) {
        ++bad;
        break;
      }
  }
  return bad;
}

// Closed: call as fast as possible until the deadline; call k of this caller uses slot (first + k) % slots.
// The latency is the call itself, its output's copy into the caller's buffer included, as in the timed loop.
template <class In, class Call>
void closed_caller(Call& call, const In in, std::size_t BS, std::size_t BO, std::size_t slots, const float* kept,
                   std::size_t first, std::int64_t deadline, LoadCaller& me) {
  std::vector<float> held(kLoadCheck * BO);
  std::size_t used[kLoadCheck];
  std::size_t count = 0;
  std::size_t s = first % slots;
  std::int64_t t1 = 0;
  do {
    const auto t0 = Clock::now();
    barrier();
    call(in + s * BS, held.data() + count * BO);
    barrier();
    const auto t = Clock::now();
    me.latencies.push_back(elapsed_ns(t0, t));
    t1 = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    used[count++] = s;
    if (++s == slots) s = 0;
    if (count == kLoadCheck || t1 >= deadline) {
      me.mismatches += mismatched(held.data(), used, count, kept, BO);
      me.checked += static_cast<std::int64_t>(count);
      count = 0;
    }
  } while (t1 < deadline);
}

// Poisson: arrivals with exponential gaps at `rate` per second (this caller's share), each waited for, then
// called. The latency runs from the scheduled arrival to the completion, so time spent behind schedule counts.
// No query is issued after the deadline: those scheduled before it but not issued are counted (unissued), their
// number drawn, not enumerated (by memorylessness, Poisson of the rate times the time left), so a rate far above
// capacity ends on time. Call k of caller c uses slot (c + 7919 k) % slots, as the Python runtime's.
template <class In, class Call>
void poisson_caller(Call& call, const In in, std::size_t BS, std::size_t BO, std::size_t slots, const float* kept,
                    std::size_t index, std::int64_t start, std::int64_t deadline, double rate, std::uint64_t seed,
                    LoadCaller& me) {
  std::vector<float> held(kLoadCheck * BO);
  std::size_t used[kLoadCheck];
  std::size_t count = 0;
  std::mt19937_64 rng(seed);
  const double mean_gap_ns = 1e9 / rate;
  std::exponential_distribution<double> gap(1.0 / mean_gap_ns);
  double t = static_cast<double>(start);
  for (std::size_t k = 0;; ++k) {
    t += gap(rng);
    if (t >= static_cast<double>(deadline)) break;
    const auto due = static_cast<std::int64_t>(t);
    const std::int64_t now = now_ns();
    if (now >= deadline) {  // behind schedule at the end: the rest are never issued
      const double left = static_cast<double>(deadline - due) / mean_gap_ns;
      me.unissued += 1 + (left > 0 ? std::poisson_distribution<std::int64_t>(left)(rng) : 0);
      break;
    }
    if (due > now) wait_until_ns(due);
    const std::size_t s = (index + k * 7919) % slots;
    barrier();
    call(in + s * BS, held.data() + count * BO);
    barrier();
    me.latencies.push_back(now_ns() - due);
    used[count++] = s;
    if (count == kLoadCheck) {
      me.mismatches += mismatched(held.data(), used, count, kept, BO);
      me.checked += static_cast<std::int64_t>(count);
      count = 0;
    }
  }
  me.mismatches += mismatched(held.data(), used, count, kept, BO);
  me.checked += static_cast<std::int64_t>(count);
}

// The no-op stand-in for a call (a load job's `noop`): the callers pass it their slot's kept output from the timed
// pass in place of the slot's input (batch s's "input" is kept + s × BO) and it copies those floats into the held
// buffer, as a real call copies its output there. A caller's latency is then its loop's own cost, and every check
// finds its slot's output.
struct NoopCall {
  std::size_t BO;
  void operator()(const float* kept_output, float* out) const { std::memcpy(out, kept_output, BO * sizeof(float)); }
};

// The callers' threads: caller c calls `calls[c]` on batch `in + s × BS` inside its own copy of `scope` (the grad
// mode is thread-local in libtorch). They start together, 1 ms after all of them are ready (and after the go file,
// when the job names one); returns the time from that start to the last one's end. A template of its own, so the
// no-op stand-in's loops are instantiations of their own and the real calls' code is as it was.
template <class In, class CallerCall, class Scope>
std::int64_t run_callers(const LoadSpec& load, std::vector<CallerCall>& calls, const In in, std::size_t BS,
                         std::size_t BO, std::size_t slots, const float* kept, const Scope& scope,
                         std::vector<LoadCaller>& callers) {
  const std::size_t n = callers.size();
  const auto duration_ns = static_cast<std::int64_t>(load.duration_s * 1e9);
  const bool closed = load.mode == "closed";
  std::latch arrived(static_cast<std::ptrdiff_t>(n));
  std::latch released(1);
  std::atomic<bool> abort{false};
  std::int64_t start = 0;  // written before `released` opens, read after
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (std::size_t c = 0; c < n; ++c)
    threads.emplace_back([&, c] {
      LoadCaller& me = callers[c];
      bool counted = false;  // arrived once: a latch may not count below zero
      try {
        auto mine = scope;
        mine([&] {
          arrived.count_down();
          counted = true;
          released.wait();
          if (abort.load()) return;
          const std::int64_t deadline = start + duration_ns;
          wait_until_ns(start);
          if (closed)
            closed_caller(calls[c], in, BS, BO, slots, kept, c * std::max<std::size_t>(1, slots / n), deadline, me);
          else
            poisson_caller(calls[c], in, BS, BO, slots, kept, c, start, deadline, load.rate / static_cast<double>(n),
                           load.seed + c, me);
        });
      } catch (...) {
        me.error = std::current_exception();
        if (!counted) arrived.count_down();
      }
    });
  const auto release = [&](bool stop) {
    abort = stop;
    released.count_down();
    for (auto& th : threads) th.join();
  };
  try {
    arrived.wait();
    wait_for_go(load);
  } catch (...) {
    release(true);
    throw;
  }
  start = now_ns() + 1'000'000;  // 1 ms: every caller is past the latch by then
  release(false);
  return now_ns() - start;
}

// The load phase, on the main thread inside the runner's scope, after the timed pass filled `m.outputs`:
// `make_caller(c)` gives caller c's call (made here, before any caller starts), run_callers runs them; the record
// and latencies go into `m`. With `noop` every caller calls NoopCall instead, over the kept outputs; the runner's
// calls are made all the same, so the process holds what it holds for a real load.
// `mean_call_ns`: the timed pass's mean, to size the closed callers' latency lists before they start.
template <class In, class MakeCaller, class Scope>
void run_load(const Job& job, const In in, std::size_t BS, MakeCaller& make_caller, const Scope& scope,
              const Sharing& sharing, double mean_call_ns, Measurement& m) {
  const LoadSpec& load = *job.load;
  const auto n = static_cast<std::size_t>(load.callers);
  const std::size_t BO = static_cast<std::size_t>(job.batch * job.output_size);
  const std::size_t slots = static_cast<std::size_t>(job.slots);
  const float* kept = m.outputs.data();
  const bool closed = load.mode == "closed";

  using CallerCall = std::decay_t<decltype(make_caller(std::int64_t{0}))>;
  std::vector<CallerCall> calls;
  calls.reserve(n);
  for (std::size_t c = 0; c < n; ++c) calls.push_back(make_caller(static_cast<std::int64_t>(c)));
  std::vector<LoadCaller> callers(n);
  // Sized for the expected calls (capped at 2^27 each, 1 GiB), so a list rarely grows while the callers run: a
  // closed caller at the timed pass's speed, a Poisson one at its share of the rate, if it can keep up. Growing
  // copies the whole list mid-run (Java's, capped at 2^24, stalled a 10 s run at 2.9M/s into a 0.5 s p99).
  const double capacity_s = 1e9 / std::max(1.0, mean_call_ns);
  const double per_caller_s = closed ? capacity_s : std::min(capacity_s, load.rate / static_cast<double>(n));
  const auto expected = static_cast<std::size_t>(std::min(per_caller_s * load.duration_s * 1.25 + 1024.0, 134217728.0));
  for (auto& me : callers) me.latencies.reserve(expected);

  std::int64_t elapsed = 0;
  if (load.noop) {
    std::vector<NoopCall> stand_ins(n, NoopCall{BO});
    elapsed = run_callers(load, stand_ins, kept, BO, BO, slots, kept, scope, callers);
  } else {
    elapsed = run_callers(load, calls, in, BS, BO, slots, kept, scope, callers);
  }
  for (const auto& me : callers)
    if (me.error) std::rethrow_exception(me.error);

  std::vector<std::int64_t> counts;
  std::int64_t issued = 0, unissued = 0, checked = 0, mismatches = 0;
  for (const auto& me : callers) {
    counts.push_back(static_cast<std::int64_t>(me.latencies.size()));
    issued += static_cast<std::int64_t>(me.latencies.size());
    unissued += me.unissued;
    checked += me.checked;
    mismatches += me.mismatches;
  }
  m.load = {
      {"mode", load.mode},
      {"callers", load.callers},
      {"counts", counts},
      {"elapsed_ns", elapsed},
      {"issued", issued},
      {"unissued", unissued},
      {"checked", checked},
      {"mismatches", mismatches},
      {"shared_model", sharing.shared},
      {"noop", load.noop},
      {"note", sharing.note},
  };
  m.load_latencies.reserve(n);
  for (auto& me : callers) m.load_latencies.push_back(std::move(me.latencies));
}

// Runs one benchmark over inputs already in memory (step 2, not timed): `load()` builds the model (timed
// as load_ns), then inside `scope(body)` (the grad-mode guard, so it covers input creation and forward
// alike) the warm-up calls, each timed alone, then more until warmup_s has passed, the timed loop with one
// clock read per block, and the bare pass; then the peak memory and the timer overhead.
// Batch s's input is `in + s × BS`: for measure(), the float32 batch itself (In = const float*, BS floats
// per batch); for a user's model, its slot's prepared tensors (In = pointer to them, BS = 1).
// `call(In batch_in, float* out)` computes one whole batch, batch × output_size floats written to `out`.
// `bare(In batch_in)` is the seed's call with nothing kept but the last output (the runner holds it); it
// runs `bare_calls` times, batch i % slots, in `bare_rounds` runs that alternate with the timed blocks,
// one pair of clock reads around each run, so the harness can tell what the timed loop's bookkeeping costs.
// Load and call are templates so the raw runner's arithmetic inlines into the loop, as a hand-written
// loop would.
// A load job (docs/runner-contract.md, "Load job") runs the timed loop once over the slots, no bare pass, then
// its callers (run_load): caller c calls with `make_caller(c)`, and `sharing` says what they share.
template <class In, class Load, class Call, class Bare, class Scope, class MakeCaller>
Measurement measure_slots(const Job& job, const In in, const std::size_t BS, Load&& load, Call&& call, Bare&& bare,
                          Scope&& scope, const Sharing& sharing, MakeCaller&& make_caller) {
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
    // The warm-up: warmup_calls calls each timed alone, then calls until warmup_s has passed since it began.
    const auto warm_start = Clock::now();
    for (std::size_t w = 0; w < warmups; ++w) {
      const In batch_in = in + (w % slots) * BS;
      const auto t0 = Clock::now();
      barrier();
      call(batch_in, scratch.data());
      barrier();
      const auto t1 = Clock::now();
      m.warmup_timings[w] = elapsed_ns(t0, t1);
    }
    const auto warm_until =
        warm_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(job.warmup_s));
    std::size_t made = warmups;
    for (; Clock::now() < warm_until; ++made) {
      call(in + (made % slots) * BS, scratch.data());
      barrier();
    }
    m.warmup_calls_made = static_cast<std::int64_t>(made);
    m.warmup_ns = elapsed_ns(warm_start, Clock::now());

    float* const out = m.outputs.data();
    std::int64_t* timings = m.timings.data();
    const std::size_t blocks = calls / block;
    const std::size_t rounds = static_cast<std::size_t>(job.bare_rounds);
    const std::size_t blocks_per_round = blocks / rounds;
    // A load job has no bare pass: its slots pass is followed by the callers instead.
    const std::size_t bare_per_round = job.load ? 0 : static_cast<std::size_t>(job.bare_calls) / rounds;
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
    if (job.load) {
      std::int64_t timed_ns = 0;
      for (const auto ns : m.timings) timed_ns += ns;
      run_load(job, in, BS, make_caller, scope, sharing, static_cast<double>(timed_ns) / static_cast<double>(calls), m);
    }
  });

  m.peak_rss_kb = peak_rss_kb();
  m.first_call_ns = m.warmup_timings.front();
  m.timer_overhead_ns = timer_overhead_ns();
  return m;
}

// The same, each load-job caller calling with its own copy of `call`: what the call holds by value is the
// caller's own, what it holds by reference (the model) is shared. For a runner whose call may run on several
// threads at once; `sharing` says what they share.
template <class In, class Load, class Call, class Bare, class Scope>
Measurement measure_slots(const Job& job, const In in, const std::size_t BS, Load&& load, Call&& call, Bare&& bare,
                          Scope&& scope, const Sharing& sharing) {
  auto copies = [&call](std::int64_t) { return std::decay_t<Call>(call); };
  return measure_slots(job, in, BS, load, call, bare, scope, sharing, copies);
}

// The built-in kinds' benchmark, one float32 tensor per call: reads the inputs file whole as floats (not
// timed), then measure_slots with `call(const float* batch_in, float* out)` over batch × sample_size floats.
template <class Load, class Call, class Bare, class Scope, class MakeCaller>
Measurement measure(const Job& job, Load&& load, Call&& call, Bare&& bare, Scope&& scope, const Sharing& sharing,
                    MakeCaller&& make_caller) {
  const std::vector<float> inputs = read_inputs(job);
  const float* const in = inputs.data();
  return measure_slots(job, in, static_cast<std::size_t>(job.batch * job.sample_size), load, call, bare, scope,
                       sharing, make_caller);
}

// Each load-job caller with its own copy of `call`, as measure_slots' overload.
template <class Load, class Call, class Bare, class Scope>
Measurement measure(const Job& job, Load&& load, Call&& call, Bare&& bare, Scope&& scope, const Sharing& sharing) {
  auto copies = [&call](std::int64_t) { return std::decay_t<Call>(call); };
  return measure(job, load, call, bare, scope, sharing, copies);
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
  if (job.load) {  // every load-phase call's latency, caller after caller
    std::ofstream f(job.load->latencies, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot create latencies file " + job.load->latencies + ": check that its folder exists");
    for (const auto& lat : m.load_latencies)
      f.write(reinterpret_cast<const char*>(lat.data()), static_cast<std::streamsize>(lat.size() * sizeof(std::int64_t)));
    f.close();
    if (!f) throw Error("failed writing latencies file " + job.load->latencies + " (disk full?)");
  }

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
      {"warmup_s", job.warmup_s},
      {"warmup_calls_made", m.warmup_calls_made},
      {"warmup_ns", m.warmup_ns},
      {"block", job.block},
      {"batch", job.batch},
      {"timer_overhead_ns", m.timer_overhead_ns},
      {"bare_calls", job.bare_calls},
      {"bare_rounds", job.bare_rounds},
      {"bare_ns", m.bare_ns},
      {"peak_rss_kb", m.peak_rss_kb < 0 ? json(nullptr) : json(m.peak_rss_kb)},
      {"extra", extra},
  };
  json full = result;
  if (!m.load.is_null()) full["load"] = m.load;
  const std::string tmp = job.result + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) throw Error("cannot create result file " + tmp + ": check that its folder exists and is writable");
    f << full.dump(2) << '\n';
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
