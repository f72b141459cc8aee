// Shared by the libtorch runners (cpp-torchscript, cpp-aoti, cpp-api): the libtorch side of the sequence of
// docs/runner-contract.md that runner_common.hpp (free of torch, for cpp-raw) cannot hold: threads and
// grad mode (step 1), what libtorch reports back for the result, copying a call's output (one float32
// tensor as it is, anything else flattened as "Several inputs, any dtype" says), and the tensors one call
// passes to the model: the one float32 input built as the job's options say ("Options"), or a user's
// model's several inputs of any dtype. The runners use this one header, so they differ only in how they
// load and how they call, and an option costs the same in each.
//
// Only ATen, the autograd factory header (for torch::from_blob, which the seed used) and the version
// header: all already part of torch/script.h and torch/torch.h, so including this costs no compile time.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/version.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "runner_common.hpp"

namespace runner {

// Step 1, before any tensor work: set_num_interop_threads may only be called once, before the inter-op
// pool starts. libtorch_info() reads both back, since the library may clamp or ignore the request.
inline void set_threads(const Job& job, const std::string& rendered_as) {
  if (job.grad_mode == "n/a")
    throw Error("job " + job.path + ": 'grad_mode' is \"n/a\", which is for runners without autograd; " +
                rendered_as + " needs default, no_grad or inference");
  at::set_num_interop_threads(static_cast<int>(job.interop_threads));
  at::set_num_threads(static_cast<int>(job.threads));
}

// The grad mode in effect right now, read from libtorch rather than assumed from the job.
inline std::string current_grad_mode() {
  if (c10::InferenceMode::is_enabled()) return "inference";
  return at::GradMode::is_enabled() ? "default" : "no_grad";
}

// measure()'s scope: the warm-up, timed and bare calls (input creation and forward alike) run under the
// job's grad mode, and `seen` records the mode libtorch reports inside the guard. Under InferenceMode,
// from_blob makes an inference tensor; feeding one to a module whose parameters require grad *outside*
// InferenceMode is the runtime error noted in BRIEF.md, so the guard must cover both.
struct GradModeScope {
  std::string mode;  // the job's
  std::string seen;  // read back inside the guard

  template <class Body>
  void operator()(Body&& body) {
    if (mode == "inference") {
      c10::InferenceMode guard;
      seen = current_grad_mode();
      body();
    } else if (mode == "no_grad") {
      at::NoGradGuard guard;
      seen = current_grad_mode();
      body();
    } else {  // "default"; set_threads has refused "n/a" and the schema anything else
      seen = current_grad_mode();
      body();
    }
  }
};

// Copies one call's output tensor (the whole batch) into the runner's output buffer; data_ptr<float>()
// itself rejects a non-float dtype. A non-contiguous output (a channels-last model returns NHWC strides)
// is first made contiguous, since the outputs file is row-major NCHW; a contiguous one is copied as it is.
inline void copy_output(const at::Tensor& y, float* out, const Job& job) {
  const std::int64_t count = job.batch * job.output_size;
  if (y.numel() != count)
    throw Error("the model returned " + std::to_string(y.numel()) + " values but the job's batch x output_size = " +
                std::to_string(job.batch) + " x " + std::to_string(job.output_size) + " = " + std::to_string(count) +
                ": the model file does not match the job's output_shape " + join(job.output_shape));
  const auto bytes = static_cast<std::size_t>(count) * sizeof(float);
  if (y.is_contiguous()) {
    std::memcpy(out, y.data_ptr<float>(), bytes);
  } else {
    const auto c = y.contiguous();
    std::memcpy(out, c.data_ptr<float>(), bytes);
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs of any structure (docs/runner-contract.md, "Several inputs, any dtype"): flattened in pytree order
// (a tensor; a tuple's or list's items in order; a dict's values in insertion order, which c10::Dict keeps;
// recursively), each converted to float32 (bool to 0 or 1) in logical row-major order, concatenated.

// The contract's dtype names ("float32", "int64", "bool", ...), libtorch's for any other.
inline std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kBool: return "bool";
    default: return c10::toString(t);
  }
}

inline at::ScalarType scalar_type_of(const std::string& dtype) {
  if (dtype == "float32") return at::kFloat;
  if (dtype == "float64") return at::kDouble;
  if (dtype == "int64") return at::kLong;
  if (dtype == "int32") return at::kInt;
  if (dtype == "bool") return at::kBool;  // one byte each, 0 or 1, as the inputs file holds them
  throw Error("internal: input dtype '" + dtype + "' has no libtorch type in torch_common.hpp");
}

inline std::string describe_tensor(const at::Tensor& t) {
  if (!t.defined()) return "None";
  std::vector<std::int64_t> sizes(t.sizes().begin(), t.sizes().end());
  return dtype_name(t.scalar_type()) + " " + join(sizes);
}

// A tuple's or a list's items, in order.
inline c10::ArrayRef<c10::IValue> items_of(const c10::IValue& v) {
  return v.isTuple() ? v.toTupleRef().elements().asArrayRef() : v.toListRef();
}

// What a call returned, for messages and the result's extra: "tuple(float32 [1, 2], dict{'b': int64 [3]})";
// a value that is neither a tensor nor a container is named by its IValue tag ("Int", "None", "String").
inline std::string describe_result(const c10::IValue& v) {
  if (v.isTensor()) return describe_tensor(v.toTensor());
  std::vector<std::string> parts;
  if (v.isTuple() || v.isList()) {
    for (const auto& e : items_of(v)) parts.push_back(describe_result(e));
    return v.isTuple() ? "tuple(" + join(parts) + ")" : "list[" + join(parts) + "]";
  }
  if (v.isGenericDict()) {
    for (const auto& kv : v.toGenericDict())
      parts.push_back((kv.key().isString() ? "'" + kv.key().toStringRef() + "'" : kv.key().tagKind()) + ": " +
                      describe_result(kv.value()));
    return "dict{" + join(parts) + "}";
  }
  return v.tagKind();
}

inline std::string describe_result(const std::vector<at::Tensor>& v) {
  std::vector<std::string> parts;
  for (const auto& t : v) parts.push_back(describe_tensor(t));
  return "(" + join(parts) + ")";  // AOTInductor's flat outputs, in pytree order
}

// Appends v's tensors in pytree order; false if v holds anything else (the caller names what it returned).
inline bool flatten_result(const c10::IValue& v, std::vector<at::Tensor>& into) {
  if (v.isTensor()) {
    into.push_back(v.toTensor());
    return true;
  }
  if (v.isTuple() || v.isList()) {
    for (const auto& e : items_of(v))
      if (!flatten_result(e, into)) return false;
    return true;
  }
  if (v.isGenericDict()) {
    for (const auto& kv : v.toGenericDict())
      if (!flatten_result(kv.value(), into)) return false;
    return true;
  }
  return false;
}

// Copies flattened outputs (one call's, the whole batch) into the runner's output buffer, converted to float32
// and contiguous; `what` describes the result, for the message when its size is not the job's.
template <class Describe>
void copy_flattened(const std::vector<at::Tensor>& parts, float* out, const Job& job, Describe&& what) {
  const std::int64_t count = job.batch * job.output_size;
  std::int64_t total = 0;
  for (const auto& t : parts) {
    if (!t.defined()) throw Error("the model returned " + what() + ": None is not a tensor the outputs can hold");
    total += t.numel();
  }
  if (total != count)
    throw Error("the model returned " + what() + ", " + std::to_string(total) +
                " values together, but the job's batch x output_size = " + std::to_string(job.batch) + " x " +
                std::to_string(job.output_size) + " = " + std::to_string(count) +
                ": the model file does not match the job's output_shape " + join(job.output_shape));
  for (const auto& t : parts) {
    const at::Tensor c = t.to(at::kFloat).contiguous();  // no copy for a contiguous float32 tensor
    std::memcpy(out, c.data_ptr<float>(), static_cast<std::size_t>(c.numel()) * sizeof(float));
    out += c.numel();
  }
}

// A call's outputs when they are anything but one float32 tensor: out of line, so the built-in kinds' path
// (copy_outputs' first branch) stays as small as it was.
[[gnu::noinline]] inline void copy_flattened_result(const c10::IValue& y, float* out, const Job& job) {
  thread_local std::vector<at::Tensor> parts;  // reused: no allocation per call once it has grown
  parts.clear();
  if (!flatten_result(y, parts)) {
    parts.clear();
    throw Error("the model returned " + describe_result(y) +
                ", expected a tensor or a tuple, list or dict of tensors (docs/runner-contract.md, "
                "\"Several inputs, any dtype\")");
  }
  copy_flattened(parts, out, job, [&] { return describe_result(y); });
  parts.clear();  // holds no output past the call
}

[[gnu::noinline]] inline void copy_flattened_result(const std::vector<at::Tensor>& y, float* out, const Job& job) {
  copy_flattened(y, out, job, [&] { return describe_result(y); });
}

// One call's outputs into the runner's output buffer: one float32 tensor copied as it is (copy_output, the
// built-in kinds' path: one tag and one dtype test more than before), anything else flattened.
inline void copy_outputs(const c10::IValue& y, float* out, const Job& job) {
  if (y.isTensor() && y.toTensor().scalar_type() == at::kFloat) return copy_output(y.toTensor(), out, job);
  copy_flattened_result(y, out, job);
}

// The same for AOTInductor's run, whose outputs are already flat, in pytree order.
inline void copy_outputs(const std::vector<at::Tensor>& y, float* out, const Job& job) {
  if (y.size() == 1 && y[0].defined() && y[0].scalar_type() == at::kFloat) return copy_output(y[0], out, job);
  copy_flattened_result(y, out, job);
}

// run_main with libtorch's errors kept to their message: c10::Error's what() carries a multi-line backtrace.
template <class Body>
int run_libtorch_main(int argc, char** argv, const char* rendered_as, const std::vector<std::string>& supported_options,
                      Body&& body) {
  return run_main(argc, argv, rendered_as, supported_options, [&](const Job& job) {
    try {
      body(job);
    } catch (const c10::Error& e) {
      throw Error(std::string("libtorch: ") + e.what_without_backtrace());
    }
  });
}

class InputBuilder {
 public:
  InputBuilder() = default;

  // Reads the options (read_job has checked them, channels_last's 4-D input_shape included) and makes
  // everything a call needs once, at load: the shapes, the mask and its indices.
  explicit InputBuilder(const Job& job)
      : input_shape_(job.input_shape), batch_(job.batch), sample_size_(job.sample_size) {
    vstack_ = option_string(job, "input_build", "from_blob") == "vstack";
    const std::string select = option_string(job, "select", "none");
    mask_select_ = select == "mask";
    index_select_ = select == "index";
    channels_last_ = option_flag(job, "channels_last");
    if (option_flag(job, "batch_dim")) {  // [batch, *sample_shape] even for one sample: a dynamic-batch export
      input_shape_ = {batch_};
      input_shape_.insert(input_shape_.end(), job.sample_shape.begin(), job.sample_shape.end());
    }
    plain_ = !vstack_ && !mask_select_ && !index_select_ && !channels_last_;

    if (vstack_) {
      part_shape_.push_back(1);  // [1, *sample_shape]: one sample, so vstack stacks them along dim 0
      part_shape_.insert(part_shape_.end(), job.sample_shape.begin(), job.sample_shape.end());
    }
    if (mask_select_ || index_select_) {
      // All true, so the selection keeps every element and the outputs stay the reference's: what is
      // measured is the cost of selecting, as in seed 001 tip 3.
      mask_ = at::ones({input_shape_.back()}, at::kBool);
      index_ = mask_.nonzero().flatten();  // int64 indices, converted once here rather than per call
    }
  }

  // The input of one call over batch_in (batch × sample_size floats, not copied: from_blob). It changes nothing
  // of the builder, so a load job's caller threads may build at once.
  at::Tensor build(const float* batch_in) const {
    float* data = const_cast<float*>(batch_in);  // from_blob takes void*; the tensor is only read
    // The default, the seed's call: one from_blob of input_shape and nothing else.
    if (plain_) return torch::from_blob(data, input_shape_);

    at::Tensor x;
    if (vstack_) {
      // One list per thread, refilled per call without reallocating once it has grown.
      thread_local std::vector<at::Tensor> parts;
      parts.clear();
      for (std::int64_t k = 0; k < batch_; ++k)
        parts.push_back(torch::from_blob(data + k * sample_size_, part_shape_));
      x = torch::vstack(parts).view(input_shape_);
    } else {
      x = torch::from_blob(data, input_shape_);
    }
    if (mask_select_) x = x.index({"...", mask_});
    if (index_select_) x = x.index_select(-1, index_);
    if (channels_last_) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    return x;
  }

  // For the result's extra: how the input is made.
  std::string describe() const {
    std::string s = vstack_ ? "per sample torch::from_blob [1, *sample_shape], torch::vstack, view as "
                            : "one torch::from_blob ";
    s += join(input_shape_);
    if (mask_select_) s += ", x.index({\"...\", mask}) (bool mask over the last dimension, made at load)";
    if (index_select_) s += ", x.index_select(-1, idx) (indices made at load)";
    if (channels_last_) s += ", x.contiguous(ChannelsLast)";
    return s + " per call";
  }

 private:
  std::vector<std::int64_t> input_shape_, part_shape_;  // built once: from_blob only views them
  std::int64_t batch_ = 1, sample_size_ = 0;
  bool plain_ = true, vstack_ = false, mask_select_ = false, index_select_ = false, channels_last_ = false;
  at::Tensor mask_, index_;
};

// ---------------------------------------------------------------------------------------------
// A user's model's inputs (docs/runner-contract.md, "Several inputs, any dtype"), for any input_tensors but
// one float32 tensor: the inputs file read as bytes and every slot's arguments made from it once, before
// anything is timed: tensor k of slot s is a torch::from_blob view of its samples s·batch ... s·batch +
// batch - 1, of its shape and dtype. Arg is what the model's call takes: c10::IValue (TorchScript's
// forward) or at::Tensor (AOTInductor's run).
template <class Arg>
class SlotInputs {
 public:
  explicit SlotInputs(const Job& job) : bytes_(read_input_bytes(job)) {
    slots_.resize(static_cast<std::size_t>(job.slots));
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      for (const auto& t : job.input_tensors) {
        const std::int64_t batch_bytes = job.batch * t.sample_elements() * dtype_bytes(t.dtype);
        auto* data = const_cast<std::byte*>(bytes_.data() + t.offset + static_cast<std::int64_t>(s) * batch_bytes);
        slots_[s].push_back(Arg(torch::from_blob(data, t.shape, at::TensorOptions().dtype(scalar_type_of(t.dtype)))));
      }
    }
    description_ = "per slot, before timing: one torch::from_blob per input tensor (" + job.describe_inputs() + ")";
  }

  // Slot s's arguments are slots()[s]; measure_slots steps through them one slot at a time.
  const std::vector<Arg>* slots() const { return slots_.data(); }
  const std::string& describe() const { return description_; }

 private:
  InputBytes bytes_;  // the tensors are views of it: it lives as long as they do
  std::vector<std::vector<Arg>> slots_;
  std::string description_;
};

// The options that build or select the one float32 input (input_build, select, batch_dim) have no meaning
// for several inputs or another dtype: refused, naming the option, rather than applied to the first tensor.
// Their default values change nothing and pass; channels_last is rule 9's (a 4-D first input) and qengine
// concerns the model, not its inputs.
inline void check_input_options(const Job& job, const std::string& rendered_as) {
  if (job.one_float_input()) return;
  const std::pair<const char*, json> defaults[] = {
      {"input_build", "from_blob"}, {"select", "none"}, {"batch_dim", false}};
  for (const auto& [key, fallback] : defaults)
    if (job.options.contains(key) && job.options.at(key) != fallback)
      throw Error("job " + job.path + ": option '" + key + "' is " + job.options.at(key).dump() + ", but " +
                  rendered_as + " applies it to one float32 input only and 'input_tensors' is " +
                  job.describe_inputs() + ": remove the option for this model");
}

// What the result reports about libtorch: its version, the library actually loaded, the threads read
// back, the grad mode seen during the calls, and how the input is built. The runner adds its own extra.
inline RuntimeInfo libtorch_info(const GradModeScope& scope, const std::string& input) {
  RuntimeInfo info;
  info.libtorch_version = TORCH_VERSION;
  info.libtorch_path = shared_object_of(reinterpret_cast<const void*>(&at::get_num_threads));
  info.threads = at::get_num_threads();
  info.interop_threads = at::get_num_interop_threads();
  info.grad_mode = scope.seen;
  info.extra = {
      {"input", input},
      {"grad_mode_scope", "warm-up and timed calls (input creation and forward); load outside"},
  };
  return info;
}

}  // namespace runner
