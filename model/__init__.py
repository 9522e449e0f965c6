"""The networks: the PyTorch CIFAR-10 tutorial CNN and its width-scaled family."""

from model.net import TutorialNet, count_parameters, training_flops_per_image, forward_flops_per_image

__all__ = ["TutorialNet", "count_parameters", "training_flops_per_image", "forward_flops_per_image"]
