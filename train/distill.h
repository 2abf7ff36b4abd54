// Knowledge distillation from the dense model while fine-tuning a sparse one
// (Hinton et al.): the student also matches the teacher's softened outputs.
//
//   loss_kd = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
//
// averaged over the batch; the trainer adds it to its cross-entropy (which
// keeps weight 1). T^2 keeps the gradient scale independent of T.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "core/status.h"
#include "train/module.h"

namespace wbs::train {

struct DistillOptions {
  double temperature = 4.0;
  double alpha = 0.5;
};
Status ValidateDistillOptions(const DistillOptions& o);

// The KD term for logits [B, classes] (teacher's are taken as constants).
torch::Tensor DistillationLoss(const torch::Tensor& student_logits,
                               const torch::Tensor& teacher_logits, const DistillOptions& o);

class Distiller {
 public:
  // The teacher is put in eval mode and never trained.
  static Result<std::shared_ptr<Distiller>> Create(std::shared_ptr<GraphModule> teacher,
                                                   const DistillOptions& o);
  // The KD term for a batch: runs the teacher on `images` without gradients.
  torch::Tensor Loss(const torch::Tensor& images, const torch::Tensor& student_logits);
  const DistillOptions& options() const { return o_; }

 private:
  Distiller() = default;
  std::shared_ptr<GraphModule> teacher_;
  DistillOptions o_;
};

}  // namespace wbs::train
