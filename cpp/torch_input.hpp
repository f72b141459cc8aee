// Shared by the libtorch runners (cpp-torchscript, cpp-api): the tensor one call passes to the model,
// built from the batch's floats as the job's options say (docs/runner-contract.md, "Options"). Both
// runners build it with this one class, so an option costs the same in either by construction.
//
// Only ATen and the autograd factory header (for torch::from_blob, which the seed used): both are
// already part of torch/script.h and torch/torch.h, so including this costs no compile time.
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/autograd/generated/variable_factories.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runner_common.hpp"

namespace runner {

// The values of the options input_build and select, the default first.
inline const std::vector<std::string> kInputBuildChoices{"from_blob", "vstack"};
inline const std::vector<std::string> kSelectChoices{"none", "mask", "index"};

class InputBuilder {
 public:
  InputBuilder() = default;

  // Reads the options and makes everything a call needs once, at load: the shapes, the mask and its
  // indices. Constructed inside the runner's load, so a bad option fails before anything is timed.
  explicit InputBuilder(const Job& job)
      : input_shape_(job.input_shape), batch_(job.batch), sample_size_(job.sample_size) {
    vstack_ = option_choice(job, "input_build", kInputBuildChoices) == "vstack";
    const std::string select = option_choice(job, "select", kSelectChoices);
    mask_select_ = select == "mask";
    index_select_ = select == "index";
    channels_last_ = option_flag(job, "channels_last");
    plain_ = !vstack_ && !mask_select_ && !index_select_ && !channels_last_;

    if (channels_last_ && input_shape_.size() != 4)
      throw Error("job " + job.path + ": option 'channels_last' needs a 4-D input_shape (N, C, H, W), got " +
                  join(input_shape_) + ": drop the option for this model");
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

}  // namespace runner
