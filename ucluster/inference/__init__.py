"""Applying a trained UCluster model: cluster assignment on Spark, evaluation reports and model export.

``model_source`` turns ``--model`` (an MLflow run or a file) into a local ``.keras`` file plus what the run knew
(features, particle count, classes, final α); ``predict`` runs the model on Arrow batches (once-loaded per
process, as Spark executors need it); ``assign`` is the Spark job; ``evaluate`` the physics report; ``export``
the serving formats and the model registry.
"""


class InferenceError(ValueError):
    """A bad model, dataset or output path, reported as one line."""
