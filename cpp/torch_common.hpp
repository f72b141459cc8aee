// Shared by the libtorch runners (cpp-torchscript, cpp-api): the libtorch side of the sequence of
// docs/runner-contract.md that runner_common.hpp (free of torch, for cpp-raw) cannot hold: threads and
// grad mode (step 1), what libtorch reports back for the result, copying a call's output, and the tensor
// one call passes to the model, built as the job's options say ("Options"). Both runners use this one
// header, so they differ only in how they load and how they call, and an option costs the same in either.
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
      parts_.reserve(static_cast<std::size_t>(batch_));  // refilled per call without reallocating
    }
    if (mask_select_ || index_select_) {
      // All true, so the selection keeps every element and the outputs stay the reference's: what is
      // measured is the cost of selecting, as in seed 001 tip 3.
      mask_ = at::ones({input_shape_.back()}, at::kBool);
      index_ = mask_.nonzero().flatten();  // int64 indices, converted once here rather than per call
    }
  }

  // The input of one call over batch_in (batch × sample_size floats, not copied: from_blob).
  at::Tensor build(const float* batch_in) {
    float* data = const_cast<float*>(batch_in);  // from_blob takes void*; the tensor is only read
    // The default, the seed's call: one from_blob of input_shape and nothing else.
    if (plain_) return torch::from_blob(data, input_shape_);

    at::Tensor x;
    if (vstack_) {
      parts_.clear();
      for (std::int64_t k = 0; k < batch_; ++k)
        parts_.push_back(torch::from_blob(data + k * sample_size_, part_shape_));
      x = torch::vstack(parts_).view(input_shape_);
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
  std::vector<at::Tensor> parts_;
  at::Tensor mask_, index_;
};

// What the result reports about libtorch: its version, the library actually loaded, the threads read
// back, the grad mode seen during the calls, and how the input is built. The runner adds its own extra.
inline RuntimeInfo libtorch_info(const GradModeScope& scope, const InputBuilder& input) {
  RuntimeInfo info;
  info.libtorch_version = TORCH_VERSION;
  info.libtorch_path = shared_object_of(reinterpret_cast<const void*>(&at::get_num_threads));
  info.threads = at::get_num_threads();
  info.interop_threads = at::get_num_interop_threads();
  info.grad_mode = scope.seen;
  info.extra = {
      {"input", input.describe()},
      {"grad_mode_scope", "warm-up and timed calls (input creation and forward); load outside"},
  };
  return info;
}

}  // namespace runner
