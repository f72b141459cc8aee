// Shared by every C++ runner (cpp-torchscript, cpp-api, cpp-raw): job parsing, input and weight
// files, the measurement sequence and the result files of docs/runner-contract.md. Keeping all of
// it here makes the three runners equivalent by construction: they differ only in how they load
// the model and in what one call does.
//
// Deliberately free of torch headers: cpp-raw includes it and must not depend on libtorch.
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

// Every file is float32 / int64 little-endian and is read and written with plain memcpy semantics.
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
// The job file

struct Job {
  std::string path;  // of the job file itself, for error messages
  std::string runner, model_kind, torchscript, model_file, state_dict, weights, inputs, outputs, timings,
      warmup_timings, artifacts, result, grad_mode;
  std::vector<std::int64_t> layers;  // MLP kinds only; [] for the others
  std::vector<std::int64_t> sample_shape, output_shape, input_shape;
  std::int64_t input_count = 0, sample_size = 0, output_size = 0, batch = 0, slots = 0, calls = 0,
               warmup_calls = 0, block = 0, threads = 0, interop_threads = 0, bare_calls = 0,
               bare_rounds = 1;
  json options = json::object();  // already checked against the keys the runner supports

  bool is_mlp() const { return model_kind == "mlp" || model_kind == "mlp_branch"; }
};

// The model kinds of docs/runner-contract.md ("Model kinds").
inline const std::vector<std::string> kModelKinds{"mlp", "mlp_branch", "op_chain", "conv_bn_relu"};

namespace detail {

inline const json& field(const json& j, const std::string& job_path, const char* key) {
  auto it = j.find(key);
  if (it == j.end())
    throw Error("job " + job_path + ": missing key '" + key +
                "' (see docs/runner-contract.md for the job format)");
  return *it;
}

inline std::string get_string(const json& j, const std::string& job_path, const char* key) {
  const json& v = field(j, job_path, key);
  if (!v.is_string())
    throw Error("job " + job_path + ": '" + key + "' must be a string, got " + v.dump());
  return v.get<std::string>();
}

inline std::int64_t get_int(const json& j, const std::string& job_path, const char* key,
                            std::int64_t min_value) {
  const json& v = field(j, job_path, key);
  if (!v.is_number_integer())
    throw Error("job " + job_path + ": '" + key + "' must be an integer, got " + v.dump());
  const auto x = v.get<std::int64_t>();
  if (x < min_value)
    throw Error("job " + job_path + ": '" + key + "' = " + std::to_string(x) + " but must be >= " +
                std::to_string(min_value));
  return x;
}

// A list of positive integers (a shape or the layer widths); `min_size` elements at least.
inline std::vector<std::int64_t> get_ints(const json& j, const std::string& job_path, const char* key,
                                          std::size_t min_size) {
  const json& v = field(j, job_path, key);
  std::vector<std::int64_t> out;
  if (v.is_array())
    for (const auto& x : v) {
      if (!x.is_number_integer() || x.get<std::int64_t>() < 1) break;
      out.push_back(x.get<std::int64_t>());
    }
  if (!v.is_array() || out.size() != v.size() || out.size() < min_size)
    throw Error("job " + job_path + ": '" + key + "' must be a list of " +
                (min_size ? "at least " + std::to_string(min_size) + " " : "") + "positive integers, got " +
                v.dump());
  return out;
}

}  // namespace detail

// Reads and checks the job: every key present with the right type, and the sizes consistent with
// each other, so that nothing later has to guess. `supported_options` are the keys of `options` this
// runner (`rendered_as`) implements; any other key is an error rather than a switch silently ignored.
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
  if (!j.is_object()) throw Error("job " + path + " must be a JSON object");

  using namespace detail;
  Job job;
  job.path = path;
  job.runner = get_string(j, path, "runner");
  job.model_kind = get_string(j, path, "model_kind");
  // Paths the runner does not use (state_dict for C++, torchscript for raw, ...) are still part of
  // the contract, so they are required like the others; a missing one means a stale harness.
  job.torchscript = get_string(j, path, "torchscript");
  job.model_file = get_string(j, path, "model_file");
  job.artifacts = get_string(j, path, "artifacts");
  job.state_dict = get_string(j, path, "state_dict");
  job.weights = get_string(j, path, "weights");
  job.inputs = get_string(j, path, "inputs");
  job.outputs = get_string(j, path, "outputs");
  job.timings = get_string(j, path, "timings");
  job.warmup_timings = get_string(j, path, "warmup_timings");
  job.result = get_string(j, path, "result");
  job.grad_mode = get_string(j, path, "grad_mode");
  job.input_count = get_int(j, path, "input_count", 1);
  job.sample_size = get_int(j, path, "sample_size", 1);
  job.output_size = get_int(j, path, "output_size", 1);
  job.batch = get_int(j, path, "batch", 1);
  job.slots = get_int(j, path, "slots", 0);  // >= 1 follows from the check against input_count / batch below
  job.calls = get_int(j, path, "calls", 1);
  job.warmup_calls = get_int(j, path, "warmup_calls", 1);  // the first call is always measured
  job.block = get_int(j, path, "block", 1);
  job.bare_calls = get_int(j, path, "bare_calls", 0);  // 0: no bare pass
  job.bare_rounds = get_int(j, path, "bare_rounds", 1);
  job.threads = get_int(j, path, "threads", 1);
  job.interop_threads = get_int(j, path, "interop_threads", 1);

  if (std::find(kModelKinds.begin(), kModelKinds.end(), job.model_kind) == kModelKinds.end())
    throw Error("job " + path + ": 'model_kind' is '" + job.model_kind + "', expected one of " + join(kModelKinds));
  // An MLP kind needs its widths (input and output at least); the other kinds have none, so [].
  job.layers = get_ints(j, path, "layers", job.is_mlp() ? 2 : 0);
  job.sample_shape = get_ints(j, path, "sample_shape", 1);
  job.output_shape = get_ints(j, path, "output_shape", 1);
  job.input_shape = get_ints(j, path, "input_shape", 1);

  job.options = field(j, path, "options");
  if (!job.options.is_object())
    throw Error("job " + path + ": 'options' must be a JSON object (use {} for none), got " + job.options.dump());
  for (const auto& [key, value] : job.options.items())
    if (std::find(supported_options.begin(), supported_options.end(), key) == supported_options.end())
      throw Error("job " + path + ": option '" + key + "' is not supported by " + rendered_as + ": supported: " +
                  (supported_options.empty() ? std::string("none") : join(supported_options)) +
                  " (remove it from the runner's options)");

  if (job.grad_mode != "default" && job.grad_mode != "no_grad" && job.grad_mode != "inference" &&
      job.grad_mode != "n/a")
    throw Error("job " + path + ": 'grad_mode' is '" + job.grad_mode +
                "', expected default, no_grad or inference");
  if (job.sample_size != product(job.sample_shape))
    throw Error("job " + path + ": sample_size = " + std::to_string(job.sample_size) +
                " but the product of sample_shape " + join(job.sample_shape) + " is " +
                std::to_string(product(job.sample_shape)) + ": they must describe the same sample");
  if (job.output_size != product(job.output_shape))
    throw Error("job " + path + ": output_size = " + std::to_string(job.output_size) +
                " but the product of output_shape " + join(job.output_shape) + " is " +
                std::to_string(product(job.output_shape)) + ": they must describe the same output");
  if (job.is_mlp() && job.sample_size != job.layers.front())
    throw Error("job " + path + ": sample_size = " + std::to_string(job.sample_size) +
                " but layers[0] = " + std::to_string(job.layers.front()));
  if (job.is_mlp() && job.output_size != job.layers.back())
    throw Error("job " + path + ": output_size = " + std::to_string(job.output_size) +
                " but layers[-1] = " + std::to_string(job.layers.back()));
  if (product(job.input_shape) != job.batch * job.sample_size)
    throw Error("job " + path + ": input_shape " + join(job.input_shape) + " holds " +
                std::to_string(product(job.input_shape)) + " floats but batch x sample_size = " +
                std::to_string(job.batch) + " x " + std::to_string(job.sample_size) +
                ": input_shape must be sample_shape or [batch, *sample_shape]");
  if (job.input_count < job.batch)
    throw Error("job " + path + ": input_count = " + std::to_string(job.input_count) + " is less than batch = " +
                std::to_string(job.batch) + ": every call needs a whole batch, so give at least one batch of inputs");
  const std::int64_t slots = std::min(job.calls, job.input_count / job.batch);
  if (job.slots != slots)
    throw Error("job " + path + ": slots = " + std::to_string(job.slots) +
                " but min(calls, input_count / batch) = min(" + std::to_string(job.calls) + ", " +
                std::to_string(job.input_count) + " / " + std::to_string(job.batch) + ") = " + std::to_string(slots) +
                ": set slots to " + std::to_string(slots));
  if (job.calls % job.block != 0)
    throw Error("job " + path + ": calls = " + std::to_string(job.calls) +
                " is not a multiple of block = " + std::to_string(job.block));
  if ((job.calls / job.block) % job.bare_rounds != 0 || job.bare_calls % job.bare_rounds != 0)
    throw Error("job " + path + ": bare_rounds = " + std::to_string(job.bare_rounds) +
                " must divide both calls / block = " + std::to_string(job.calls / job.block) +
                " and bare_calls = " + std::to_string(job.bare_calls));
  return job;
}

// The runner is generated for one network; a job for another one is a harness bug, caught here
// rather than as garbage outputs.
inline void check_layers(const Job& job, const std::vector<std::int64_t>& rendered) {
  if (job.layers != rendered)
    throw Error("job " + job.path + " is for layers " + join(job.layers) +
                " but this runner was rendered for layers " + join(rendered) +
                ": re-render and rebuild the runner for this model");
}

// ---------------------------------------------------------------------------------------------
// Options (docs/runner-contract.md, "Options"): read before anything is timed; read_job has already
// rejected the keys the runner does not support, these check the values.

// A string option that must be one of `allowed`; absent means allowed[0], the default.
inline std::string option_choice(const Job& job, const char* key, const std::vector<std::string>& allowed) {
  const auto it = job.options.find(key);
  if (it == job.options.end()) return allowed.front();
  if (!it->is_string() || std::find(allowed.begin(), allowed.end(), it->get<std::string>()) == allowed.end())
    throw Error("job " + job.path + ": option '" + key + "' is " + it->dump() + ", expected one of " +
                join(allowed));
  return it->get<std::string>();
}

// A boolean option; absent means false.
inline bool option_flag(const Job& job, const char* key) {
  const auto it = job.options.find(key);
  if (it == job.options.end()) return false;
  if (!it->is_boolean())
    throw Error("job " + job.path + ": option '" + key + "' is " + it->dump() + ", expected true or false");
  return it->get<bool>();
}

// A free-form string option; absent means "".
inline std::string option_string(const Job& job, const char* key) {
  const auto it = job.options.find(key);
  if (it == job.options.end()) return {};
  if (!it->is_string() || it->get<std::string>().empty())
    throw Error("job " + job.path + ": option '" + key + "' is " + it->dump() + ", expected a non-empty string");
  return it->get<std::string>();
}

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

inline std::vector<float> read_inputs(const Job& job) {
  return read_floats(job.inputs, job.input_count * job.sample_size, "inputs",
                     "the job's input_count x sample_size = " + std::to_string(job.input_count) + " x " +
                         std::to_string(job.sample_size));
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
// The measurement sequence (docs/runner-contract.md, steps 3-6)

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

// Runs one benchmark: `load()` builds the model (timed as load_ns), then inside `scope(body)` (the
// grad-mode guard, so it covers input creation and forward alike) the warm-up calls, each timed
// alone, the timed loop with one clock read per block, and the bare pass.
// `call(const float* batch_in, float* out)` computes one whole batch: batch × sample_size floats in,
// batch × output_size floats written to `out`. `bare(const float* batch_in)` is the seed's call with
// nothing kept but the last output (the runner holds it); it runs `bare_calls` times, batch i % slots,
// in `bare_rounds` runs that alternate with the timed blocks, one pair of clock reads around each run,
// so the harness can tell what the timed loop's bookkeeping costs.
// Load and call are templates so the raw runner's arithmetic inlines into the loop, as a hand-written
// loop would.
template <class Load, class Call, class Bare, class Scope>
Measurement measure(const Job& job, const std::vector<float>& inputs, Load&& load, Call&& call, Bare&& bare,
                    Scope&& scope) {
  // Floats per batch in and out: batch s starts at s × BS in the inputs and s × BO in the outputs.
  const std::size_t BS = static_cast<std::size_t>(job.batch * job.sample_size);
  const std::size_t BO = static_cast<std::size_t>(job.batch * job.output_size);
  const std::size_t slots = static_cast<std::size_t>(job.slots);
  const std::size_t calls = static_cast<std::size_t>(job.calls);
  const std::size_t block = static_cast<std::size_t>(job.block);
  const std::size_t warmups = static_cast<std::size_t>(job.warmup_calls);
  const float* in = inputs.data();

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
      const float* batch_in = in + (w % slots) * BS;
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
    const float* x = in;
    float* y = out;
    // The bare pass's own counter: bare call i uses batch i % slots.
    std::size_t bare_slot = 0;
    const float* xb = in;
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

// Copies one call's output tensor (the whole batch) into the runner's output buffer. A template over
// the tensor type so this header stays free of torch includes; data_ptr<float>() itself rejects a
// non-float dtype. A non-contiguous output (a channels-last model returns NHWC strides) is first made
// contiguous, since the outputs file is row-major NCHW; a contiguous one is copied as it is.
template <class Tensor>
inline void copy_output(const Tensor& y, float* out, const Job& job) {
  const std::int64_t count = job.batch * job.output_size;
  if (y.numel() != count)
    throw Error("the model returned " + std::to_string(y.numel()) + " values but the job's batch x output_size = " +
                std::to_string(job.batch) + " x " + std::to_string(job.output_size) + " = " + std::to_string(count) +
                ": the model file does not match the job's output_shape " + join(job.output_shape));
  const auto bytes = static_cast<std::size_t>(count) * sizeof(float);
  if (y.is_contiguous()) {
    std::memcpy(out, y.template data_ptr<float>(), bytes);
  } else {
    const auto c = y.contiguous();
    std::memcpy(out, c.template data_ptr<float>(), bytes);
  }
}

// Runs `body` under the job's grad mode. The guard types are parameters so this header needs no
// torch include: torch runners pass <c10::InferenceMode, torch::NoGradGuard>.
template <class InferenceGuard, class NoGradGuard, class Body>
void with_grad_mode(const std::string& mode, Body&& body) {
  if (mode == "inference") {
    InferenceGuard guard;
    body();
  } else if (mode == "no_grad") {
    NoGradGuard guard;
    body();
  } else if (mode == "default") {
    body();
  } else {
    throw Error("grad_mode '" + mode + "' is not supported by a libtorch runner: use default, no_grad or inference");
  }
}

// ---------------------------------------------------------------------------------------------
// The result files (step 7)

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
