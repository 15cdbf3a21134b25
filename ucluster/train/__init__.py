"""Training: pretraining, k-means initialisation of the centroids, and end-to-end deep k-means."""
