"""``hem segment``'s own pieces: the segmentation networks (segmentation_models_pytorch) and the
batches of (image, mask) pairs. Only ``hem segment`` imports them."""
