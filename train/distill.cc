#include "train/distill.h"

namespace wbs::train {

Status ValidateDistillOptions(const DistillOptions& o) {
  if (!(o.temperature > 0.0)) return InvalidArgument("--temperature {} must be > 0", o.temperature);
  if (!(o.alpha >= 0.0)) return InvalidArgument("--distill-alpha {} must be >= 0", o.alpha);
  return Status::Ok();
}

torch::Tensor DistillationLoss(const torch::Tensor& student_logits,
                               const torch::Tensor& teacher_logits, const DistillOptions& o) {
  const double t = o.temperature;
  torch::Tensor log_p_student = torch::log_softmax(student_logits / t, /*dim=*/1);
  torch::Tensor log_p_teacher = torch::log_softmax(teacher_logits.detach() / t, /*dim=*/1);
  // KL(teacher || student) = Σ p_t (log p_t - log p_s), batch mean.
  torch::Tensor kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(1).mean();
  return kl * (o.alpha * t * t);
}

Result<std::shared_ptr<Distiller>> Distiller::Create(std::shared_ptr<GraphModule> teacher,
                                                     const DistillOptions& o) {
  WBS_RETURN_IF_ERROR(ValidateDistillOptions(o));
  if (!teacher) return InvalidArgument("distillation needs a teacher model");
  std::shared_ptr<Distiller> d(new Distiller());
  teacher->eval();
  for (torch::Tensor& p : teacher->parameters()) p.set_requires_grad(false);
  d->teacher_ = std::move(teacher);
  d->o_ = o;
  return d;
}

torch::Tensor Distiller::Loss(const torch::Tensor& images, const torch::Tensor& student_logits) {
  torch::Tensor teacher_logits;
  {
    torch::NoGradGuard no_grad;
    teacher_logits = teacher_->forward(images);
  }
  return DistillationLoss(student_logits, teacher_logits, o_);
}

}  // namespace wbs::train
